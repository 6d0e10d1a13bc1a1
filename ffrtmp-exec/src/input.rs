//! Confining job inputs to the input directory: the input file itself, and every file a
//! playlist input (an HLS `.m3u8`, an FFmpeg concat list) would make the demuxer open.
//!
//! FFmpeg follows playlist entries wherever they point, so a playlist placed in the input
//! directory could otherwise read any file the workload can (`/etc/passwd`, other jobs'
//! inputs). Network entries are refused here too, and the FFmpeg engine also passes
//! `-protocol_whitelist file,crypto` (local files, decrypted or not) and a
//! `-format_whitelist` without manifest demuxers, so that FFmpeg itself refuses the rest.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::ExecError;

mod parse;

/// Largest playlist read for checking; a bigger "playlist" is refused.
pub const MAX_PLAYLIST_BYTES: u64 = 1024 * 1024;
/// How deep playlists may nest (a master playlist, its variants, ...).
const MAX_DEPTH: usize = 4;
/// Most entries checked for one input, over all the playlists it names.
pub const MAX_ENTRIES: usize = 20_000;
/// Bytes looked at to recognise a playlist by its content.
const SNIFF_BYTES: usize = 4096;

/// What an input file is, as far as confinement is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A media file: opened by itself, referencing nothing else.
    Media,
    /// An HLS playlist (`#EXTM3U`, or a `.m3u8`/`.m3u` name): its segments, keys and variant
    /// playlists are opened too.
    Hls,
    /// An FFmpeg concat list (`ffconcat version`, or a `.txt`/`.ffconcat` name): its `file`
    /// entries are opened too.
    Concat,
}

/// Demuxers FFmpeg may use for a media input: ordinary containers and elementary streams,
/// none that reads other files by itself (no HLS, DASH, concat, image sequences).
const MEDIA_FORMATS: &str = "mov,matroska,webm,mpegts,mpeg,mpegvideo,avi,flv,asf,mxf,nut,ivf,obu,h264,hevc,\
                             m4v,mjpeg,ogg,dv,gif,wav,mp3,aac,flac,yuv4mpegpipe";

/// The `-format_whitelist` for an input of `kind`: ordinary containers, plus `hls` for an HLS
/// playlist and `concat` for a concat list, so that FFmpeg itself refuses any other
/// manifest, wherever it is met.
///
/// ```
/// use ffrtmp_exec::input::{format_whitelist, InputKind};
/// assert!(format_whitelist(InputKind::Hls).ends_with(",hls"));
/// assert!(!format_whitelist(InputKind::Media).contains("hls"));
/// ```
pub fn format_whitelist(kind: InputKind) -> String {
    match kind {
        InputKind::Media => MEDIA_FORMATS.to_string(),
        InputKind::Hls => format!("{MEDIA_FORMATS},hls"),
        InputKind::Concat => format!("{MEDIA_FORMATS},concat"),
    }
}

/// Tells what `path` is by its first bytes (`#EXTM3U`, `ffconcat version`), else by its
/// extension (`.m3u8`, `.m3u`, `.txt`, `.ffconcat`). A DASH manifest is refused outright: its
/// segment templates cannot be checked here.
///
/// ```
/// use ffrtmp_exec::input::{sniff, InputKind};
/// let dir = tempfile::tempdir().unwrap();
/// let list = dir.path().join("clip.mp4");
/// std::fs::write(&list, "#EXTM3U\nseg0.ts\n").unwrap();
/// assert_eq!(sniff(&list).unwrap(), InputKind::Hls);
/// ```
pub fn sniff(path: &Path) -> Result<InputKind, ExecError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| ExecError::InvalidParameter(format!("input {} cannot be read: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&head);
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with("#EXTM3U") {
        return Ok(InputKind::Hls);
    }
    if start.starts_with("ffconcat version") {
        return Ok(InputKind::Concat);
    }
    if (start.starts_with("<?xml") || start.starts_with("<MPD")) && text.contains("<MPD") {
        return Err(ExecError::InvalidParameter(format!(
            "input {} is a DASH manifest; manifests are not accepted as inputs",
            path.display()
        )));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "m3u8" | "m3u" => InputKind::Hls,
        "txt" | "ffconcat" => InputKind::Concat,
        _ => InputKind::Media,
    })
}

/// Resolves `input` under `input_dir`, refusing anything that lands outside it (symlinks
/// included), does not exist or is not a regular file; a playlist is refused unless every
/// file it names (recursively) resolves inside the directory too. Returns the canonical path
/// and what the file is.
///
/// ```
/// use ffrtmp_exec::input::{resolve_input, InputKind};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("evil.m3u8"), "#EXTM3U\n#EXTINF:1,\n/etc/passwd\n").unwrap();
/// let err = resolve_input(dir.path(), "evil.m3u8").unwrap_err();
/// assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter);
/// assert!(err.to_string().contains("outside the input directory"), "{err}");
/// ```
pub fn resolve_input(input_dir: &Path, input: &str) -> Result<(PathBuf, InputKind), ExecError> {
    let root = input_dir.canonicalize().map_err(|e| {
        ExecError::InvalidParameter(format!("input directory {} is not usable: {e}", input_dir.display()))
    })?;
    let path = root
        .join(input)
        .canonicalize()
        .map_err(|e| ExecError::InvalidParameter(format!("input {input:?} not found in the input directory: {e}")))?;
    if !path.starts_with(&root) {
        return Err(ExecError::InvalidParameter(format!(
            "input {input:?} resolves outside the input directory"
        )));
    }
    if !path.is_file() {
        return Err(ExecError::InvalidParameter(format!(
            "input {input:?} is not a regular file"
        )));
    }
    let kind = sniff(&path)?;
    if kind != InputKind::Media {
        let mut checker = Checker {
            root: &root,
            input,
            seen: HashSet::new(),
            entries: 0,
        };
        checker.check(&path, kind, 0)?;
    }
    Ok((path, kind))
}

/// Walks a playlist and the playlists it names.
struct Checker<'a> {
    root: &'a Path,
    input: &'a str,
    seen: HashSet<PathBuf>,
    /// Entries checked so far, over all playlists: a bound on the work one job may cause.
    entries: usize,
}

impl Checker<'_> {
    fn refuse(&self, why: String) -> ExecError {
        ExecError::InvalidParameter(format!("input {:?} is a playlist that {why}", self.input))
    }

    /// Checks every entry of the playlist at `path` (the path as FFmpeg will see it).
    fn check(&mut self, path: &Path, kind: InputKind, depth: usize) -> Result<(), ExecError> {
        if depth > MAX_DEPTH {
            return Err(self.refuse(format!("nests playlists deeper than {MAX_DEPTH} levels")));
        }
        if !self.seen.insert(path.to_path_buf()) {
            return Ok(());
        }
        // FFmpeg resolves entries against the playlist's URL, where `?` and `#` are not path.
        if path.as_os_str().as_bytes().iter().any(|b| matches!(b, b'?' | b'#')) {
            return Err(self.refuse(format!("is named {}, with a `?` or `#` in its path", path.display())));
        }
        let bytes = read_capped(path).map_err(|why| self.refuse(why))?;
        let (entries, live) = match kind {
            InputKind::Hls => {
                let list = parse::hls(&bytes).map_err(|why| self.refuse(why))?;
                (list.entries, list.has_segments && !list.ended)
            }
            InputKind::Concat => (parse::concat(&bytes).map_err(|why| self.refuse(why))?, false),
            InputKind::Media => (Vec::new(), false),
        };
        self.entries += entries.len();
        if self.entries > MAX_ENTRIES {
            return Err(self.refuse(format!("names more than {MAX_ENTRIES} files in all")));
        }
        let base = path.parent().unwrap_or(self.root);
        for entry in entries {
            let seen_as = self.confine(base, OsStr::from_bytes(&entry))?;
            let nested = sniff(&seen_as)?;
            if nested != InputKind::Media {
                self.check(&seen_as, nested, depth + 1)?;
            }
        }
        if live {
            // FFmpeg reloads a playlist without an end for as long as it grows.
            return Err(self.refuse(format!(
                "is live ({} has no #EXT-X-ENDLIST); only complete playlists are accepted",
                path.display()
            )));
        }
        Ok(())
    }

    /// Where `entry` of a playlist in `base` leads, refusing URLs and anything outside the
    /// root. Returns the path as FFmpeg opens it (relative entries joined and `..` removed
    /// lexically, as FFmpeg does), once it and the kernel's reading of the unnormalised path
    /// resolve to the same file inside the root.
    fn confine(&self, base: &Path, entry: &OsStr) -> Result<PathBuf, ExecError> {
        let bytes = entry.as_bytes();
        let shown = entry.to_string_lossy();
        let not_local = || {
            self.refuse(format!(
                "names {shown:?}, which is not a local file; only files inside the input directory are read"
            ))
        };
        if bytes.iter().any(|b| matches!(b, b'?' | b'#')) {
            // A query or fragment: FFmpeg's URL arithmetic treats it apart from the path.
            return Err(self.refuse(format!("names {shown:?}, with a `?` or `#`, which is not accepted")));
        }
        // FFmpeg keeps an entry with a scheme as it is: `file:a/b` opens `a/b` relative to the
        // workload's directory, not the playlist's; only `file:/absolute` is unambiguous.
        let file = match bytes.strip_prefix(b"file:") {
            Some(rest) if rest.starts_with(b"/") => rest,
            Some(_) => return Err(not_local()),
            None => bytes,
        };
        let first = file.split(|b| *b == b'/').next().unwrap_or_default();
        if first.contains(&b':') || file.is_empty() {
            return Err(not_local());
        }
        let joined = base.join(OsStr::from_bytes(file));
        let lexical = normalize(&joined);
        let mut real = Vec::with_capacity(2);
        for candidate in [&lexical, &joined] {
            let path = candidate.canonicalize().map_err(|e| {
                self.refuse(format!(
                    "names {shown:?}, which cannot be resolved inside the input directory: {e}"
                ))
            })?;
            if !path.starts_with(self.root) {
                return Err(self.refuse(format!("names {shown:?}, which resolves outside the input directory")));
            }
            if !path.is_file() {
                return Err(self.refuse(format!("names {shown:?}, which is not a regular file")));
            }
            real.push(path);
        }
        if real[0] != real[1] {
            // `..` after a symlinked directory: FFmpeg and the kernel would disagree on the file.
            return Err(self.refuse(format!(
                "names {shown:?}, which leads to different files depending on how `..` is read"
            )));
        }
        Ok(lexical)
    }
}

/// The whole of a playlist, refused when it is not a regular file or is larger than
/// [`MAX_PLAYLIST_BYTES`] (read with that bound, whatever its size says).
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read ({}): {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PLAYLIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({}): {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PLAYLIST_BYTES {
        return Err(format!(
            "is larger than {} KiB ({})",
            MAX_PLAYLIST_BYTES / 1024,
            path.display()
        ));
    }
    Ok(bytes)
}

/// `path` with `.` dropped and `..` applied to the components before it.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::ErrorKind;

    struct Dirs {
        _root: tempfile::TempDir,
        input: PathBuf,
        outside: PathBuf,
    }

    fn dirs() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let outside = root.path().join("secret.ts");
        std::fs::write(&outside, b"secret").unwrap();
        Dirs {
            input,
            outside,
            _root: root,
        }
    }

    fn refused(d: &Dirs, name: &str) -> String {
        let err = resolve_input(&d.input, name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
        err.to_string()
    }

    #[test]
    fn entries_are_parsed_like_ffmpeg() {
        let hls = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                   #EXT-X-MEDIA:TYPE=AUDIO,URI=a.m3u8,NAME=x\n#EXTINF:1,\nseg0.ts\n\nseg1.ts  \n";
        let entries: Vec<String> = parse::hls(hls.as_bytes())
            .unwrap()
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        assert_eq!(entries, ["key.bin", "init.mp4", "a.m3u8", "seg0.ts", "seg1.ts"]);
        let concat = "ffconcat version 1.0\n# c\nfile 'a b.mp4'\nfile c\\ d.mp4 \nduration 3\nfile x'y'z.mp4\n";
        let names: Vec<&[u8]> = vec![b"a b.mp4", b"c d.mp4", b"xyz.mp4"];
        assert_eq!(parse::concat(concat.as_bytes()).unwrap(), names);
        assert!(parse::concat(b"file a.mp4\noption protocol_whitelist file,http\n").is_err());
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }

    #[test]
    fn playlists_are_recognised_by_content_and_name() {
        let d = dirs();
        let w = |name: &str, text: &str| {
            let p = d.input.join(name);
            std::fs::write(&p, text).unwrap();
            sniff(&p)
        };
        assert_eq!(w("a.mp4", "\u{feff}#EXTM3U\n").unwrap(), InputKind::Hls);
        assert_eq!(w("b.bin", "ffconcat version 1.0\n").unwrap(), InputKind::Concat);
        assert_eq!(w("c.m3u", "seg.ts\n").unwrap(), InputKind::Hls);
        assert_eq!(w("d.TXT", "file x\n").unwrap(), InputKind::Concat);
        assert_eq!(w("e.mp4", "\0\0\0 ftypisom").unwrap(), InputKind::Media);
        assert_eq!(
            w("f.mpd", "<?xml version=\"1.0\"?>\n<MPD>").unwrap_err().kind(),
            ErrorKind::InvalidParameter
        );
    }

    #[test]
    fn playlist_entries_must_stay_inside() {
        let d = dirs();
        std::fs::create_dir(d.input.join("hls")).unwrap();
        std::fs::write(d.input.join("hls/seg0.ts"), b"x").unwrap();
        std::fs::write(d.input.join("top.ts"), b"x").unwrap();
        std::os::unix::fs::symlink(&d.outside, d.input.join("hls/link.ts")).unwrap();
        let w = |name: &str, text: String| std::fs::write(d.input.join(name), text).unwrap();

        w(
            "hls/ok.m3u8",
            "#EXTM3U\n#EXTINF:1,\nseg0.ts\n#EXTINF:1,\n../top.ts\n#EXT-X-ENDLIST\n".into(),
        );
        w(
            "master.m3u8",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhls/ok.m3u8\n".into(),
        );
        assert_eq!(resolve_input(&d.input, "hls/ok.m3u8").unwrap().1, InputKind::Hls);
        assert_eq!(resolve_input(&d.input, "master.m3u8").unwrap().1, InputKind::Hls);

        let abs = d.outside.display().to_string();
        for (name, text) in [
            ("abs.m3u8", format!("#EXTM3U\n#EXTINF:1,\n{abs}\n")),
            ("up.m3u8", "#EXTM3U\n#EXTINF:1,\n../secret.ts\n".to_string()),
            ("url.m3u8", format!("#EXTM3U\n#EXTINF:1,\nfile:{abs}\n")),
            (
                "key.m3u8",
                "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"/etc/passwd\"\nhls/seg0.ts\n".into(),
            ),
            ("link.m3u8", "#EXTM3U\n#EXTINF:1,\nhls/link.ts\n".into()),
            ("nested.m3u8", "#EXTM3U\nabs.m3u8\n".into()),
            ("list.txt", format!("ffconcat version 1.0\nfile '{abs}'\n")),
            ("list2.ffconcat", "file ../secret.ts\n".into()),
        ] {
            w(name, text);
            let msg = refused(&d, name);
            assert!(msg.contains("outside the input directory"), "{name}: {msg}");
        }
        w(
            "net.m3u8",
            "#EXTM3U\n#EXTINF:1,\nhttp://example.invalid/seg.ts\n".into(),
        );
        assert!(refused(&d, "net.m3u8").contains("not a local file"));
        w("missing.m3u8", "#EXTM3U\n#EXTINF:1,\nnope.ts\n".into());
        assert!(refused(&d, "missing.m3u8").contains("cannot be resolved"));
        w("loop.m3u8", "#EXTM3U\nloop.m3u8\n#EXT-X-ENDLIST\n".into());
        assert!(
            resolve_input(&d.input, "loop.m3u8").is_ok(),
            "a self-reference is checked once"
        );
    }

    /// A directory with `seg.ts` and a secret outside it, and a writer of playlists.
    type Resolved = Result<(PathBuf, InputKind), ExecError>;

    fn playlist_dir() -> (Dirs, impl Fn(&str, &[u8]) -> Resolved) {
        let d = dirs();
        std::fs::write(d.input.join("seg.ts"), b"x").unwrap();
        let input = d.input.clone();
        let write = move |name: &str, text: &[u8]| {
            std::fs::write(input.join(name), text).unwrap();
            resolve_input(&input, name)
        };
        (d, write)
    }

    #[test]
    fn lines_split_at_carriage_returns_and_nuls_are_checked() {
        let (d, w) = playlist_dir();
        let abs = d.outside.display().to_string();
        for (name, text) in [
            (
                "cr.m3u8",
                format!("#EXTM3U\n#EXT-X-FOO\r{abs}\nseg.ts\n#EXT-X-ENDLIST\n"),
            ),
            (
                "nul.m3u8",
                format!("#EXTM3U\n#EXT-X-FOO\0{abs}\nseg.ts\n#EXT-X-ENDLIST\n"),
            ),
            ("cr.txt", format!("ffconcat version 1.0\n# note\rfile '{abs}'\n")),
        ] {
            let err = w(name, text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("outside the input directory"), "{name}: {err}");
        }
        let err = w("two.txt", b"ffconcat version 1.0\nfile seg.ts /etc/passwd\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    }

    #[test]
    fn scheme_query_and_fragment_entries_are_refused() {
        let (d, w) = playlist_dir();
        let end = "\n#EXT-X-ENDLIST\n";
        for entry in [
            "file:seg.ts",
            "file:./seg.ts",
            "seg.ts?x=1",
            "seg.ts#frag",
            "crypto:seg.ts",
        ] {
            let err = w("s.m3u8", format!("#EXTM3U\n{entry}{end}").as_bytes()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{entry}: {err}");
        }
        // `file:` with an absolute path is that path, checked as any other.
        let inside = d.input.canonicalize().unwrap().join("seg.ts");
        let ok = format!("#EXTM3U\nfile:{}{end}", inside.display());
        assert_eq!(w("abs.m3u8", ok.as_bytes()).unwrap().1, InputKind::Hls);
    }

    #[test]
    fn quoted_uris_are_unescaped_before_checking() {
        let (d, w) = playlist_dir();
        // FFmpeg reads `..\/secret.ts` as `../secret.ts`.
        let text = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"..\\/secret.ts\"\nseg.ts\n#EXT-X-ENDLIST\n";
        let err = w("k.m3u8", text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("outside the input directory"), "{err}");
        drop(d);
    }

    #[test]
    fn dot_dot_after_a_symlinked_directory_is_refused() {
        let (d, w) = playlist_dir();
        // in/deep/sub -> in/other/inner: `sub/../x.ts` is in/deep/x.ts to FFmpeg, in/other/x.ts
        // to the kernel.
        for dir in ["deep", "other/inner"] {
            std::fs::create_dir_all(d.input.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink(d.input.join("other/inner"), d.input.join("deep/sub")).unwrap();
        std::fs::write(d.input.join("deep/x.ts"), b"x").unwrap();
        std::fs::write(d.input.join("other/x.ts"), b"#EXTM3U\n/etc/passwd\n#EXT-X-ENDLIST\n").unwrap();
        let err = w("deep/l.m3u8", b"#EXTM3U\nsub/../x.ts\n#EXT-X-ENDLIST\n").unwrap_err();
        assert!(err.to_string().contains("depending on how"), "{err}");
    }

    #[test]
    fn live_playlists_are_refused() {
        let (_d, w) = playlist_dir();
        let err = w("live.m3u8", b"#EXTM3U\n#EXTINF:1,\nseg.ts\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("live"), "{err}");
        // A master playlist has no end of its own; its media playlists must.
        w("v.m3u8", b"#EXTM3U\n#EXTINF:1,\nseg.ts\n#EXT-X-ENDLIST\n").unwrap();
        w("master.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n").unwrap();
    }

    #[test]
    fn playlists_are_bounded() {
        let (_d, w) = playlist_dir();
        let many = format!("#EXTM3U\n{}#EXT-X-ENDLIST\n", "seg.ts\n".repeat(MAX_ENTRIES + 1));
        let err = w("many.m3u8", many.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
        let big = vec![b'#'; MAX_PLAYLIST_BYTES as usize + 1];
        let err = w("big.m3u8", &big).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
