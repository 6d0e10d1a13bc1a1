//! Confining job inputs to the input directory: the input file itself, and every file a
//! playlist input (an HLS `.m3u8`, an FFmpeg concat list) would make the demuxer open.
//!
//! FFmpeg follows playlist entries wherever they point, so a playlist placed in the input
//! directory could otherwise read any file the workload can (`/etc/passwd`, other jobs'
//! inputs). Network entries are refused here too, and the FFmpeg engine also passes
//! `-protocol_whitelist file` so that nothing but local files is ever opened.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::ExecError;

/// Largest playlist read for checking; a bigger "playlist" is refused.
pub const MAX_PLAYLIST_BYTES: u64 = 1024 * 1024;
/// How deep playlists may nest (a master playlist, its variants, ...).
const MAX_DEPTH: usize = 4;
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
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_PLAYLIST_BYTES {
            return Err(self.refuse(format!(
                "is larger than {} KiB ({})",
                MAX_PLAYLIST_BYTES / 1024,
                path.display()
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| self.refuse(format!("cannot be read ({}): {e}", path.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        let entries = match kind {
            InputKind::Hls => hls_entries(&text),
            InputKind::Concat => concat_entries(&text).map_err(|why| self.refuse(why))?,
            InputKind::Media => Vec::new(),
        };
        let base = path.parent().unwrap_or(self.root);
        for entry in entries {
            let seen_as = self.confine(base, &entry)?;
            let nested = sniff(&seen_as)?;
            if nested != InputKind::Media {
                self.check(&seen_as, nested, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Where `entry` of a playlist in `base` leads, refusing URLs and anything outside the
    /// root. Returns the path as FFmpeg opens it (relative entries joined and `..` removed
    /// lexically, as FFmpeg does), once both it and the kernel's reading of the unnormalised
    /// path resolve inside the root.
    fn confine(&self, base: &Path, entry: &str) -> Result<PathBuf, ExecError> {
        let file = entry.strip_prefix("file:").unwrap_or(entry);
        let first = file.split('/').next().unwrap_or_default();
        if first.contains(':') || file.is_empty() {
            return Err(self.refuse(format!(
                "names {entry:?}, which is not a local file; only files inside the input directory are read"
            )));
        }
        let joined = base.join(file);
        let lexical = normalize(&joined);
        for candidate in [&lexical, &joined] {
            let real = candidate.canonicalize().map_err(|e| {
                self.refuse(format!(
                    "names {entry:?}, which cannot be resolved inside the input directory: {e}"
                ))
            })?;
            if !real.starts_with(self.root) {
                return Err(self.refuse(format!("names {entry:?}, which resolves outside the input directory")));
            }
            if !real.is_file() {
                return Err(self.refuse(format!("names {entry:?}, which is not a regular file")));
            }
        }
        Ok(lexical)
    }
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

/// The URIs of an HLS playlist: every line that is not a tag or comment, and every `URI="…"`
/// attribute of a tag (keys, init segments, alternative renditions).
fn hls_entries(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_string());
            continue;
        }
        // FFmpeg also takes unquoted attribute values (up to the next comma).
        let mut rest = line;
        while let Some(i) = rest.find("URI=") {
            let value = &rest[i + 4..];
            let (uri, after) = match value.strip_prefix('"') {
                Some(quoted) => quoted.split_at(quoted.find('"').unwrap_or(quoted.len())),
                None => value.split_at(value.find(',').unwrap_or(value.len())),
            };
            out.push(uri.to_string());
            rest = after;
        }
    }
    out
}

/// The `file` entries of an FFmpeg concat list; `option` directives (which change how a
/// file is opened) are refused.
fn concat_entries(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (directive, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match directive {
            "file" => out.push(concat_token(rest.trim_start())),
            "option" => return Err("sets options for opening its files, which is not accepted".to_string()),
            _ => {}
        }
    }
    Ok(out)
}

/// One token as FFmpeg's concat demuxer reads it: `'…'` quotes literally, `\` escapes the
/// next character, unquoted whitespace ends it.
fn concat_token(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' => {
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    out.push(q);
                }
            }
            c if c.is_whitespace() => break,
            c => out.push(c),
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
                   #EXT-X-MEDIA:TYPE=AUDIO,URI=a.m3u8,NAME=x\n#EXTINF:1,\nseg0.ts\n\n  seg1.ts  \n";
        assert_eq!(
            hls_entries(hls),
            ["key.bin", "init.mp4", "a.m3u8", "seg0.ts", "seg1.ts"]
        );
        let concat = "ffconcat version 1.0\n# c\nfile 'a b.mp4'\nfile c\\ d.mp4 \nduration 3\nfile x'y'z.mp4\n";
        assert_eq!(concat_entries(concat).unwrap(), ["a b.mp4", "c d.mp4", "xyz.mp4"]);
        assert!(concat_entries("file a.mp4\noption protocol_whitelist file,http\n").is_err());
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
            "#EXTM3U\n#EXTINF:1,\nseg0.ts\n#EXTINF:1,\n../top.ts\n".into(),
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
        w("loop.m3u8", "#EXTM3U\nloop.m3u8\n".into());
        assert!(
            resolve_input(&d.input, "loop.m3u8").is_ok(),
            "a self-reference is checked once"
        );
    }
}
