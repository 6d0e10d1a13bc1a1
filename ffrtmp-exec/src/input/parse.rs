//! Reading playlists the way FFmpeg 5.1 reads them, byte for byte, so that the entries
//! checked here are the entries the demuxers open.
//!
//! Both demuxers end a line at `\n`, `\r` or `\0`. The HLS demuxer strips trailing
//! whitespace only, takes a line as a tag only when its first byte is `#`, and reads tag
//! attributes with `ff_parse_key_value`. The concat demuxer splits a line into a keyword
//! and `av_get_token` arguments. What either would read differently from a plain reading
//! (lines FFmpeg truncates, leading blanks, text after a file name) is refused.

/// Longest line (and attribute value) FFmpeg keeps: `MAX_URL_SIZE` less the NUL. Longer
/// ones are cut by FFmpeg, so such a playlist is refused rather than guessed at.
pub(crate) const MAX_LINE: usize = 4095;

/// `av_isspace`: what the HLS demuxer strips from line ends and `ff_parse_key_value` skips.
fn is_av_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The concat demuxer's `SPACE_CHARS` (also `av_get_token`'s `WHITESPACES`).
fn is_concat_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The lines of `bytes` as FFmpeg's line readers split them (`\n`, `\r` and `\0` end a line).
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| matches!(b, b'\n' | b'\r' | 0))
}

/// What an HLS playlist names, in FFmpeg's reading.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct HlsPlaylist {
    /// Every URI: segment and variant lines, and the `URI` attributes of tags (keys, init
    /// sections, renditions).
    pub entries: Vec<Vec<u8>>,
    /// Whether it has a segment line (a media playlist rather than a master playlist only).
    pub has_segments: bool,
    /// Whether it has `#EXT-X-ENDLIST`: without it FFmpeg treats the playlist as live and
    /// reads it again and again.
    pub ended: bool,
}

/// Parses an HLS playlist as `hls.c` does (`ff_get_chomp_line` per line).
pub(crate) fn hls(bytes: &[u8]) -> Result<HlsPlaylist, String> {
    let mut out = HlsPlaylist::default();
    let mut variant_next = false;
    for raw in lines(bytes) {
        if raw.len() > MAX_LINE {
            return Err(format!("has a line longer than {MAX_LINE} bytes"));
        }
        let end = raw.iter().rposition(|b| !is_av_space(*b)).map_or(0, |i| i + 1);
        let line = &raw[..end];
        if line.is_empty() {
            continue;
        }
        if line[0] == b'#' {
            if line.starts_with(b"#EXT-X-ENDLIST") {
                out.ended = true;
            }
            if line.starts_with(b"#EXT-X-STREAM-INF:") {
                variant_next = true;
            }
            // Every tag's attributes, not only those FFmpeg reads today (a superset is safe),
            // except segment titles, which are free text.
            if line.starts_with(b"#EXTINF:") {
                continue;
            }
            if let Some(colon) = line.iter().position(|b| *b == b':') {
                out.entries.extend(uri_attributes(&line[colon + 1..])?);
            }
            continue;
        }
        if is_av_space(line[0]) {
            return Err("has an entry starting with a blank, which FFmpeg would keep".to_string());
        }
        if !std::mem::take(&mut variant_next) {
            out.has_segments = true;
        }
        out.entries.push(line.to_vec());
    }
    Ok(out)
}

/// The `URI=` values of a tag's attribute list, read as `ff_parse_key_value` does: a key
/// starts after blanks or commas and runs to `=`; a quoted value honours backslash escapes,
/// an unquoted one ends at a blank or comma.
pub(crate) fn uri_attributes(attrs: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while p < attrs.len() && (is_av_space(attrs[p]) || attrs[p] == b',') {
            p += 1;
        }
        if p >= attrs.len() {
            break;
        }
        let key_start = p;
        let Some(eq) = attrs[p..].iter().position(|b| *b == b'=') else {
            break;
        };
        p += eq + 1;
        let key = &attrs[key_start..p];
        let mut value = Vec::new();
        if attrs.get(p) == Some(&b'"') {
            p += 1;
            while p < attrs.len() && attrs[p] != b'"' {
                if attrs[p] == b'\\' {
                    if p + 1 >= attrs.len() {
                        break;
                    }
                    value.push(attrs[p + 1]);
                    p += 2;
                } else {
                    value.push(attrs[p]);
                    p += 1;
                }
            }
            if attrs.get(p) == Some(&b'"') {
                p += 1;
            }
        } else {
            while p < attrs.len() && !(is_av_space(attrs[p]) || attrs[p] == b',') {
                value.push(attrs[p]);
                p += 1;
            }
        }
        if key == b"URI=" {
            if value.len() > MAX_LINE {
                return Err(format!("has a URI longer than {MAX_LINE} bytes"));
            }
            out.push(value);
        }
    }
    Ok(out)
}

/// The `file` entries of an FFmpeg concat list, read as `concat.c` does. `option`
/// directives (which change how a file is opened) and `file` lines with anything after the
/// name are refused.
pub(crate) fn concat(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for line in lines(bytes) {
        let mut p = skip(line, 0, is_concat_space);
        let start = p;
        while p < line.len() && !is_concat_space(line[p]) {
            p += 1;
        }
        let keyword = &line[start..p];
        if keyword.is_empty() || keyword[0] == b'#' {
            continue;
        }
        match keyword {
            b"file" => {
                let (name, rest) = av_get_token(&line[p..]);
                if skip(rest, 0, is_concat_space) != rest.len() {
                    return Err("has a file line with more than one name, which is not accepted".to_string());
                }
                out.push(name);
            }
            b"option" => return Err("sets options for opening its files, which is not accepted".to_string()),
            _ => {}
        }
    }
    Ok(out)
}

fn skip(s: &[u8], mut p: usize, what: fn(u8) -> bool) -> usize {
    while p < s.len() && what(s[p]) {
        p += 1;
    }
    p
}

/// `av_get_token(&s, SPACE_CHARS)`: leading blanks skipped, `'…'` quotes literally, `\`
/// escapes the next byte, an unquoted blank ends the token; trailing unquoted blanks are
/// dropped. Returns the token and what follows it.
pub(crate) fn av_get_token(s: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut p = skip(s, 0, is_concat_space);
    let mut out = Vec::new();
    // Length of `out` that trailing-blank trimming may not go below (quoted or escaped).
    let mut end = 0;
    while p < s.len() && !is_concat_space(s[p]) {
        let c = s[p];
        p += 1;
        if c == b'\\' && p < s.len() {
            out.push(s[p]);
            p += 1;
            end = out.len();
        } else if c == b'\'' {
            while p < s.len() && s[p] != b'\'' {
                out.push(s[p]);
                p += 1;
            }
            if p < s.len() {
                p += 1;
                end = out.len();
            }
        } else {
            out.push(c);
        }
    }
    while out.len() > end && out.last().is_some_and(|b| is_concat_space(*b)) {
        out.pop();
    }
    (out, &s[p..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[Vec<u8>]) -> Vec<String> {
        v.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect()
    }

    #[test]
    fn hls_lines_end_where_ffmpeg_ends_them() {
        // `\r` alone ends a line: the second half is a segment to FFmpeg, not part of a tag.
        let p = hls(b"#EXTM3U\n#EXT-X-FOO\r/elsewhere/x.mp4\n#EXT-X-BAR\0/other.ts\n").unwrap();
        assert_eq!(strs(&p.entries), ["/elsewhere/x.mp4", "/other.ts"]);
        assert!(p.has_segments && !p.ended);
        // Trailing blanks go, a line starting with a blank is refused.
        let p = hls(b"#EXTM3U\nseg0.ts \t\x0b\n#EXT-X-ENDLIST\n").unwrap();
        assert_eq!(strs(&p.entries), ["seg0.ts"]);
        assert!(p.ended);
        assert!(hls(b"#EXTM3U\n seg0.ts\n").is_err());
        assert!(hls(format!("#EXTM3U\n{}\n", "a".repeat(MAX_LINE + 1)).as_bytes()).is_err());
        // A master playlist names variants only.
        let p = hls(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n").unwrap();
        assert!(!p.has_segments);
    }

    #[test]
    fn uri_attributes_are_read_like_ff_parse_key_value() {
        let uris = |s: &str| strs(&uri_attributes(s.as_bytes()).unwrap());
        assert_eq!(uris(r#"METHOD=AES-128,URI="k\"e\\y.bin",IV=0x1"#), [r#"k"e\y.bin"#]);
        assert_eq!(uris(r#"URI="a\/b""#), ["a/b"]);
        assert_eq!(uris("TYPE=AUDIO,URI=a.m3u8 NAME=x"), ["a.m3u8"]);
        assert_eq!(uris(" ,, URI=x,URI=y"), ["x", "y"]);
        // A key runs from after a blank or comma to `=`: `XURI=` is not `URI=`.
        assert!(uris("XURI=/etc/passwd").is_empty());
        // The quoted value ends at the unescaped quote; what follows is the next key.
        assert_eq!(uris(r#"A="x\",URI=/etc/passwd""#), Vec::<String>::new());
        assert_eq!(uris(r#"A="x",URI=/etc/passwd"#), ["/etc/passwd"]);
    }

    #[test]
    fn concat_lists_are_read_like_the_concat_demuxer() {
        let list = b"ffconcat version 1.0\n  # c\nfile 'a b.mp4'\nfile c\\ d.mp4 \nduration 3\nfile x'y'z.mp4\r\
                     file e.mp4\0file f.mp4\n";
        assert_eq!(
            strs(&concat(list).unwrap()),
            ["a b.mp4", "c d.mp4", "xyz.mp4", "e.mp4", "f.mp4"]
        );
        // \v is no separator to the concat demuxer: it is part of the name.
        assert_eq!(strs(&concat(b"file a\x0b/x\n").unwrap()), ["a\x0b/x"]);
        assert!(concat(b"file a.mp4 /etc/passwd\n").is_err());
        assert!(concat(b"file a.mp4\noption protocol_whitelist file,http\n").is_err());
    }
}
