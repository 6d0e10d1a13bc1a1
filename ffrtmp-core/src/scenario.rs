//! Scenario names are parsed, not looked up: `<height>p[<fps>]-<codec>`, with `4K` for 2160p.
//!
//! The named presets of the original project (`live-4k`, `live-stream`, `live-rtmp`,
//! `transcode`) are accepted too and map onto the same structure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A video codec, independent of the encoder that implements it on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
    /// AV1.
    Av1,
    /// VP9.
    Vp9,
}

impl Codec {
    /// All codecs.
    pub const ALL: [Codec; 4] = [Codec::H264, Codec::H265, Codec::Av1, Codec::Vp9];

    /// The codec's short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Av1 => "av1",
            Codec::Vp9 => "vp9",
        }
    }

    /// The codec an FFmpeg encoder name produces (`libx264`, `h264_nvenc`, `hevc_qsv`,
    /// `libsvtav1`, `vp9_vaapi`, …), if it is one of ours.
    ///
    /// ```
    /// use ffrtmp_core::Codec;
    /// assert_eq!(Codec::of_encoder("h264_nvenc"), Some(Codec::H264));
    /// assert_eq!(Codec::of_encoder("libx265"), Some(Codec::H265));
    /// assert_eq!(Codec::of_encoder("aac"), None);
    /// ```
    pub fn of_encoder(encoder: &str) -> Option<Codec> {
        let e = encoder.to_ascii_lowercase();
        if e.contains("264") {
            Some(Codec::H264)
        } else if e.contains("265") || e.contains("hevc") {
            Some(Codec::H265)
        } else if e.contains("av1") {
            Some(Codec::Av1)
        } else if e.contains("vp9") {
            Some(Codec::Vp9)
        } else {
            None
        }
    }

    /// The software encoder FFmpeg uses for this codec when no hardware encoder is chosen.
    pub fn software_encoder(self) -> &'static str {
        match self {
            Codec::H264 => "libx264",
            Codec::H265 => "libx265",
            Codec::Av1 => "libsvtav1",
            Codec::Vp9 => "libvpx-vp9",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Codec {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "avc" | "x264" => Ok(Codec::H264),
            "h265" | "hevc" | "x265" => Ok(Codec::H265),
            "av1" => Ok(Codec::Av1),
            "vp9" => Ok(Codec::Vp9),
            _ => Err(ScenarioError::UnknownCodec(s.to_string())),
        }
    }
}

/// Why a scenario name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The name matches neither the grammar nor a named preset.
    #[error("unknown scenario {0:?}: expected <height>p[<fps>]-<codec> (e.g. 720p-h264, 1080p60-h265, 4K60-h265; codecs h264, h265, av1, vp9) or one of live-4k, live-stream, live-rtmp, live-abr, transcode")]
    Unknown(String),
    /// The codec part is not a known codec.
    #[error("unknown codec {0:?}: expected one of h264, h265, av1, vp9")]
    UnknownCodec(String),
    /// Height or frame rate outside what an encoder can take.
    #[error("scenario {0:?} is out of range: height must be 144..=4320 and fps 1..=240")]
    OutOfRange(String),
}

/// A parsed scenario: what to encode, at which size and rate.
///
/// ```
/// use ffrtmp_core::{Codec, Scenario};
/// let s: Scenario = "1080p60-h265".parse().unwrap();
/// assert_eq!((s.width, s.height, s.fps, s.codec), (1920, 1080, 60, Codec::H265));
/// let k: Scenario = "4K-h265".parse().unwrap();
/// assert_eq!((k.width, k.height), (3840, 2160));
/// assert!("1080p-mpeg2".parse::<Scenario>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The name as given.
    pub name: String,
    /// Frame width in pixels (16:9, rounded to even).
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target codec.
    pub codec: Codec,
    /// A live-streaming scenario (prefers the live queue and the GStreamer engine).
    pub live: bool,
}

/// Named presets from the original project and what each means, and `live-abr`: a live
/// ladder of renditions (1080p, 720p, 480p) in one job.
pub const NAMED_PRESETS: [(&str, &str); 5] = [
    ("live-4k", "2160p30-h264"),
    ("live-stream", "1080p30-h264"),
    ("live-rtmp", "720p30-h264"),
    ("live-abr", "1080p30-h264"),
    ("transcode", "1080p30-h264"),
];

/// Every scenario name used by the original project; all of them parse.
pub const KNOWN_SCENARIOS: [&str; 14] = [
    "720p-h264",
    "1080p-h264",
    "1080p-h265",
    "4K-h265",
    "4K60-h264",
    "4K60-h265",
    "1080p60-h264",
    "1080p60-h265",
    "1080p-av1",
    "720p-vp9",
    "live-4k",
    "live-stream",
    "live-rtmp",
    "transcode",
];

impl Scenario {
    /// Parses a scenario name (see the module docs for the grammar).
    pub fn parse(name: &str) -> Result<Scenario, ScenarioError> {
        let trimmed = name.trim();
        if let Some((_, canonical)) = NAMED_PRESETS
            .iter()
            .find(|(preset, _)| preset.eq_ignore_ascii_case(trimmed))
        {
            let mut s = Self::parse_grammar(canonical, name)?;
            s.live = trimmed.to_ascii_lowercase().starts_with("live");
            return Ok(s);
        }
        Self::parse_grammar(trimmed, name)
    }

    fn parse_grammar(text: &str, original: &str) -> Result<Scenario, ScenarioError> {
        let unknown = || ScenarioError::Unknown(original.to_string());
        let (size, codec) = text.split_once('-').ok_or_else(unknown)?;
        let codec: Codec = codec.parse()?;
        let lower = size.to_ascii_lowercase();
        let (height, rate) = if let Some(rest) = lower.strip_prefix("4k") {
            (2160u32, rest)
        } else if let Some(rest) = lower.strip_prefix("8k") {
            (4320u32, rest)
        } else {
            let (h, r) = lower.split_once('p').ok_or_else(unknown)?;
            (h.parse::<u32>().map_err(|_| unknown())?, r)
        };
        let fps = if rate.is_empty() {
            30
        } else {
            rate.parse::<u32>().map_err(|_| unknown())?
        };
        if !(144..=4320).contains(&height) || !(1..=240).contains(&fps) {
            return Err(ScenarioError::OutOfRange(original.to_string()));
        }
        Ok(Scenario {
            name: original.to_string(),
            width: width_for(height),
            height,
            fps,
            codec,
            live: false,
        })
    }
}

/// 16:9 width for a height, rounded to an even number as encoders require.
pub fn width_for(height: u32) -> u32 {
    let w = (u64::from(height) * 16).div_ceil(9) as u32;
    w + (w % 2)
}

impl FromStr for Scenario {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_scenario_parses() {
        for name in KNOWN_SCENARIOS {
            let s = Scenario::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
        }
    }

    #[test]
    fn sizes_and_rates() {
        let s = Scenario::parse("720p-h264").unwrap();
        assert_eq!((s.width, s.height, s.fps), (1280, 720, 30));
        let s = Scenario::parse("4K60-h265").unwrap();
        assert_eq!((s.width, s.height, s.fps, s.codec), (3840, 2160, 60, Codec::H265));
        let s = Scenario::parse("live-4k").unwrap();
        assert!(s.live);
        assert_eq!(s.height, 2160);
        assert_eq!(width_for(480), 854);
    }

    #[test]
    fn bad_names_are_refused_with_the_grammar() {
        for bad in [
            "",
            "1080",
            "1080p-",
            "p-h264",
            "1080x-h264",
            "99999p-h264",
            "1080p0-h264",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad:?} accepted");
        }
        let msg = Scenario::parse("hd-h264").unwrap_err().to_string();
        assert!(msg.contains("<height>p[<fps>]-<codec>"), "{msg}");
    }
}
