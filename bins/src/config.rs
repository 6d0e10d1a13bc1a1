//! `--config FILE`: a TOML file of settings under the command line and the environment. Each
//! key is a long flag name (`port = 8443`, `api-key-file = "/etc/ffrtmp/keys"`,
//! `user-key-file = ["a", "b"]`, `insecure-plaintext = true`). A flag beats its environment
//! variable, which beats the file, which beats the built-in default. A key that is not a flag
//! of the binary is an error naming it.
//!
//! The file's settings are parsed as if given on the command line (after the real flags), so
//! clap checks them exactly as it checks flags: value syntax, flags that require or exclude
//! one another.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

/// Keys a file may not set: they choose the file, or make the binary print and exit.
const RESERVED: [&str; 5] = ["config", "check-config", "completions", "help", "version"];

/// Parses the command line of `A` with the settings of its config file: the `--config` flag,
/// or else the environment variable `config_env`. Exits with clap's usage error on a bad
/// flag (or a bad value in the file), as `A::parse()` would; a config file that cannot be
/// read, is not TOML, or names a key that is not a flag is an error.
pub fn parse<A: CommandFactory + FromArgMatches>(config_env: &str) -> anyhow::Result<A> {
    parse_from(std::env::args_os().collect(), config_env)
}

/// [`parse`] with the given arguments (the first is the program name).
pub fn parse_from<A: CommandFactory + FromArgMatches>(mut args: Vec<OsString>, config_env: &str) -> anyhow::Result<A> {
    let Some(path) = config_path(&args, config_env) else {
        let matches = A::command().get_matches_from(args);
        return Ok(A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()));
    };
    let given = A::command().try_get_matches_from(&args).unwrap_or_else(|e| e.exit());
    args.extend(file_args(&A::command(), &given, &path)?);
    let matches = A::command().try_get_matches_from(args).unwrap_or_else(|e| {
        // The flags were fine on their own: the file's settings are at fault.
        eprintln!(
            "note: flags in this error may come from the config file {}",
            path.display()
        );
        e.exit()
    });
    Ok(A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

/// The config file named by `--config FILE`, `--config=FILE`, or the environment. Read before
/// clap parses, because the file adds to what clap parses.
fn config_path(args: &[OsString], config_env: &str) -> Option<PathBuf> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return rest.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    std::env::var_os(config_env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The flags the TOML file at `path` stands for, leaving out those the command line or the
/// environment (`given`) already set.
fn file_args(command: &Command, given: &ArgMatches, path: &Path) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && !RESERVED.contains(&long.as_str()))
        else {
            bail!(
                "unknown key `{key}` in the config file {}: keys are the long flags of {} (see --help)",
                path.display(),
                command.get_name()
            );
        };
        let values = values_of(value).with_context(|| format!("key `{key}` in the config file {}", path.display()))?;
        let source = given.value_source(arg.get_id().as_str());
        if matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => match values.as_slice() {
                [v] if v == "true" => flags.push(format!("--{long}").into()),
                [v] if v == "false" => {}
                _ => bail!("key `{key}` in the config file {} is true or false", path.display()),
            },
            ArgAction::Append => flags.extend(values.iter().map(|v| format!("--{long}={v}").into())),
            _ if values.len() == 1 => flags.push(format!("--{long}={}", values[0]).into()),
            _ => bail!(
                "key `{key}` in the config file {} takes one value, not a list",
                path.display()
            ),
        }
    }
    Ok(flags)
}

/// A TOML value as the flag values it stands for.
fn values_of(value: &toml::Value) -> anyhow::Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Datetime(d) => vec![d.to_string()],
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => bail!("a list holds plain values only"),
                other => Ok(values_of(other)?.remove(0)),
            })
            .collect::<anyhow::Result<_>>()?,
        toml::Value::Table(_) => bail!("expected a value, found a table"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "probe")]
    struct Probe {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 1, env = "PROBE_TEST_PORT")]
        port: u16,
        #[arg(long, default_value = "a")]
        name: String,
        #[arg(long)]
        plain: bool,
        #[arg(long)]
        file: Vec<String>,
    }

    fn parse(args: &[&str], toml: &str) -> anyhow::Result<Probe> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let mut all = vec!["probe".into(), "--config".into(), path.clone().into_os_string()];
        all.extend(args.iter().map(OsString::from));
        parse_from::<Probe>(all, "PROBE_TEST_CONFIG")
    }

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let p = parse(&[], "port = 7\nname = \"b\"\nplain = true\nfile = [\"x\", \"y\"]").unwrap();
        assert_eq!((p.port, p.name.as_str(), p.plain), (7, "b", true));
        assert_eq!(p.file, ["x", "y"]);
        let p = parse(&["--port", "9", "--file", "z"], "port = 7\nfile = [\"x\"]").unwrap();
        assert_eq!(p.port, 9);
        assert_eq!(p.file, ["z"]);
        assert_eq!(parse(&[], "").unwrap().port, 1);
        assert!(!parse(&[], "plain = false").unwrap().plain);
        assert_eq!(parse(&[], "file = \"w\"").unwrap().file, ["w"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        let err = format!("{:#}", parse(&[], "prot = 7").unwrap_err());
        assert!(err.contains("unknown key `prot`"), "{err}");
        let err = format!("{:#}", parse(&[], "config = \"x\"").unwrap_err());
        assert!(err.contains("unknown key `config`"), "{err}");
        let err = format!("{:#}", parse(&[], "name = [\"a\", \"b\"]").unwrap_err());
        assert!(err.contains("key `name`"), "{err}");
        let err = format!("{:#}", parse(&[], "[name]\nx = 1").unwrap_err());
        assert!(err.contains("key `name`"), "{err}");
        let err = format!("{:#}", parse(&[], "port = ").unwrap_err());
        assert!(err.contains("not valid TOML"), "{err}");
        let err = format!("{:#}", parse(&[], "plain = 1").unwrap_err());
        assert!(err.contains("key `plain`"), "{err}");
    }
}
