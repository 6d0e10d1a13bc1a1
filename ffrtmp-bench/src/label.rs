//! Result sets' labels: what the report's legends, headings and tables call each set, never
//! a file path (`LABEL=PATH` on the command line, else the directory `ffrtmp bench run` wrote
//! it to, else the file's stem).

use std::path::{Path, PathBuf};

use super::report::ResultSet;

/// Splits a result-set argument into its label and its file: `LABEL=PATH` names the set
/// explicitly; a plain path (or one that exists although it holds `=`) is labelled by
/// [`label_of`].
///
/// ```
/// use std::path::Path;
/// use ffrtmp_bench::label::labelled;
/// assert_eq!(labelled(Path::new("gpu=out/b/runs.json")), ("gpu".to_string(), "out/b/runs.json".into()));
/// assert_eq!(labelled(Path::new("out/baseline/runs.json")), ("baseline".to_string(), "out/baseline/runs.json".into()));
/// ```
pub fn labelled(arg: &Path) -> (String, PathBuf) {
    let text = arg.to_string_lossy();
    if !arg.exists() {
        if let Some((label, path)) = text.split_once('=') {
            if !label.is_empty() && !label.contains('/') && !path.is_empty() {
                return (label.to_string(), PathBuf::from(path));
            }
        }
    }
    (label_of(arg), arg.to_path_buf())
}

/// A result set's label from its file: the file's stem, or for the names `ffrtmp bench run`
/// gives every set (`runs.json`, `runs.csv`, `results.*`) the directory holding it.
///
/// ```
/// use std::path::Path;
/// use ffrtmp_bench::label::label_of;
/// assert_eq!(label_of(Path::new("/tmp/x/nvenc-run/runs.json")), "nvenc-run");
/// assert_eq!(label_of(Path::new("data/x264-slow.csv")), "x264-slow");
/// ```
pub fn label_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let generic = matches!(stem.as_str(), "runs" | "results" | "");
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned());
    match dir {
        Some(dir) if generic => dir,
        _ if stem.is_empty() => path.display().to_string(),
        _ => stem,
    }
}

/// Makes the sets' names distinct for the legend: a repeated label gets ` (2)`, ` (3)`, ….
pub fn unique_names(sets: &mut [ResultSet]) {
    let mut seen: Vec<String> = Vec::new();
    for set in sets.iter_mut() {
        let mut name = set.name.clone();
        let mut k = 2;
        while seen.contains(&name) {
            name = format!("{} ({k})", set.name);
            k += 1;
        }
        seen.push(name.clone());
        set.name = name;
    }
}
