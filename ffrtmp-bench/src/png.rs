//! PNG copies of the report's charts: the very SVG text the page embeds, rasterized with
//! `resvg` (pure Rust), so that a chart's SVG and PNG never disagree.
//!
//! Text needs a font: the system's fonts are loaded (fontconfig's directories and the usual
//! ones), and the charts' `sans-serif` is mapped to the first of a few common sans families
//! found, else to any installed font. Without any font the PNGs are written without text, and
//! [`Rasterizer::font`] says so (on Debian: `apt-get install fonts-dejavu-core`).

use std::fmt;

use resvg::tiny_skia::{Color, Pixmap, Transform};
use resvg::usvg;

/// Pixels per SVG unit: twice the page's size, sharp on high-density screens and in print.
pub const SCALE: f32 = 2.0;

/// Largest PNG side accepted, in pixels (a chart of thousands of scenarios is refused rather
/// than allocating without bound).
pub const MAX_SIDE: u32 = 16_384;

/// Sans-serif families preferred for the charts' text, in order.
const PREFERRED: [&str; 6] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
    "FreeSans",
];

/// Why a chart could not be rasterized.
#[derive(Debug)]
pub enum PngError {
    /// The SVG did not parse.
    Svg(String),
    /// The image would be empty or larger than [`MAX_SIDE`].
    Size {
        /// Width in pixels.
        width: f32,
        /// Height in pixels.
        height: f32,
    },
    /// PNG encoding failed.
    Encode(String),
}

impl fmt::Display for PngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PngError::Svg(e) => write!(f, "the chart's SVG did not parse: {e}"),
            PngError::Size { width, height } => write!(
                f,
                "a {width:.0}x{height:.0} px image is empty or larger than {MAX_SIDE} px on a side"
            ),
            PngError::Encode(e) => write!(f, "PNG encoding failed: {e}"),
        }
    }
}

impl std::error::Error for PngError {}

/// Turns chart SVG into PNG bytes. Loading the system's fonts takes a moment: build one and
/// reuse it for every chart.
pub struct Rasterizer {
    options: usvg::Options<'static>,
    font: Option<String>,
}

impl Rasterizer {
    /// A rasterizer with the system's fonts.
    pub fn with_system_fonts() -> Rasterizer {
        let mut options = usvg::Options::default();
        let db = options.fontdb_mut();
        db.load_system_fonts();
        let families: Vec<String> = db
            .faces()
            .flat_map(|face| face.families.iter().map(|(name, _)| name.clone()))
            .collect();
        let font = PREFERRED
            .iter()
            .find(|p| families.iter().any(|f| f == *p))
            .map(|p| p.to_string())
            .or_else(|| families.first().cloned());
        if let Some(family) = &font {
            db.set_sans_serif_family(family.clone());
            // usvg falls back to "serif" when a family is not found: the same font.
            db.set_serif_family(family.clone());
            options.font_family = family.clone();
        }
        Rasterizer { options, font }
    }

    /// The font family text is drawn with; `None` when no font is installed (then the PNGs
    /// carry no text).
    pub fn font(&self) -> Option<&str> {
        self.font.as_deref()
    }

    /// Rasterizes `svg` at [`SCALE`] onto white and encodes it as PNG.
    pub fn png(&self, svg: &str) -> Result<Vec<u8>, PngError> {
        let tree = usvg::Tree::from_str(&standalone(svg), &self.options).map_err(|e| PngError::Svg(e.to_string()))?;
        let size = tree.size();
        let (width, height) = (size.width() * SCALE, size.height() * SCALE);
        let fits = |v: f32| v.is_finite() && v >= 1.0 && v <= MAX_SIDE as f32;
        if !(fits(width) && fits(height)) {
            return Err(PngError::Size { width, height });
        }
        let mut pixmap =
            Pixmap::new(width.ceil() as u32, height.ceil() as u32).ok_or(PngError::Size { width, height })?;
        // Opaque white, as on the page: a transparent chart is unreadable in dark viewers.
        pixmap.fill(Color::WHITE);
        resvg::render(&tree, Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
        pixmap.encode_png().map_err(|e| PngError::Encode(e.to_string()))
    }
}

/// The SVG as a document of its own: inline in HTML an `<svg>` is in the SVG namespace
/// implicitly, in a file it must say so.
fn standalone(svg: &str) -> String {
    const NS: &str = "xmlns=\"http://www.w3.org/2000/svg\"";
    match svg.find("<svg") {
        Some(i) if !svg[i..].starts_with(&format!("<svg {NS}")) && !svg.contains(NS) => {
            format!("{}<svg {NS}{}", &svg[..i], &svg[i + 4..])
        }
        _ => svg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels that are not the white background.
    fn inked(png: &[u8]) -> (u32, u32, usize) {
        let pixmap = Pixmap::decode_png(png).expect("a valid PNG");
        let white = pixmap
            .pixels()
            .iter()
            .filter(|p| (p.red(), p.green(), p.blue(), p.alpha()) == (255, 255, 255, 255))
            .count();
        (pixmap.width(), pixmap.height(), pixmap.pixels().len() - white)
    }

    /// Needs an installed font: fails, saying how to install one, where there is none, unless
    /// `FFRTMP_SKIP_FONT_TESTS=1` (`scripts/test.sh` installs `fonts-dejavu-core`).
    #[test]
    fn text_is_drawn_with_an_installed_font() {
        let r = Rasterizer::with_system_fonts();
        let Some(font) = r.font() else {
            if std::env::var("FFRTMP_SKIP_FONT_TESTS").as_deref() == Ok("1") {
                eprintln!("skipped (FFRTMP_SKIP_FONT_TESTS=1): no font installed");
                return;
            }
            panic!(
                "this test needs an installed font, and there is none here, so text would be missing from the \
                 PNG charts: install one (Debian/Ubuntu: apt-get install fonts-dejavu-core), or set \
                 FFRTMP_SKIP_FONT_TESTS=1 to skip it"
            );
        };
        let text = r#"<svg width="120" height="40"><text x="4" y="28" font-family="sans-serif" font-size="20">J/frame</text></svg>"#;
        let (w, h, ink) = inked(&r.png(text).unwrap());
        assert_eq!((w, h), (240, 80), "scaled by {SCALE}");
        assert!(ink > 100, "text drawn in {font}: {ink} inked pixels");
        let blank = r#"<svg width="120" height="40"><text x="4" y="28"></text></svg>"#;
        assert_eq!(inked(&r.png(blank).unwrap()).2, 0);
    }

    #[test]
    fn bad_svg_and_absurd_sizes_are_errors_not_panics() {
        let r = Rasterizer::with_system_fonts();
        assert!(matches!(r.png("<svg"), Err(PngError::Svg(_))));
        let huge = r#"<svg width="100000" height="10"></svg>"#;
        let e = r.png(huge).unwrap_err();
        assert!(matches!(e, PngError::Size { .. }), "{e}");
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn the_namespace_is_added_once() {
        let s = standalone("<svg width=\"1\"></svg>");
        assert_eq!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\"></svg>");
        assert_eq!(standalone(&s), s);
    }
}
