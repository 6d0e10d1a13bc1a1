//! `--config FILE`: a TOML file of settings under the command line and the environment. Each
//! key is a long flag name (`port = 8443`, `api-key-file = "/etc/ffrtmp/keys"`,
//! `user-key-file = ["a", "b"]`); its value becomes that flag's default, so a flag beats its
//! environment variable, which beats the file, which beats the built-in default. A key that
//! is not a flag of the binary is an error naming it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{ArgAction, Command, CommandFactory, FromArgMatches};

/// Keys a file may not set: they choose the file, or make the binary print and exit.
const RESERVED: [&str; 5] = ["config", "check-config", "completions", "help", "version"];

/// Parses the command line of `A` over the settings of its config file: the `--config` flag,
/// or else the environment variable `config_env`. Exits with clap's usage error on a bad
/// flag, as `A::parse()` would; a config file that cannot be read, is not TOML, or names a
/// key that is not a flag is an error.
pub fn parse<A: CommandFactory + FromArgMatches>(config_env: &str) -> anyhow::Result<A> {
    parse_from(std::env::args_os().collect(), config_env)
}

/// [`parse`] with the given arguments (the first is the program name).
pub fn parse_from<A: CommandFactory + FromArgMatches>(args: Vec<OsString>, config_env: &str) -> anyhow::Result<A> {
    let mut command = A::command();
    if let Some(path) = config_path(&args, config_env) {
        command = apply_file(command, &path)?;
    }
    let matches = command.get_matches_from(args);
    A::from_arg_matches(&matches).map_err(|e| e.exit())
}

/// The config file named by `--config FILE`, `--config=FILE`, or the environment. Read before
/// clap parses, because the file supplies the defaults clap parses with.
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
    std::env::var_os(config_env).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Reads the TOML file at `path` and makes each key the default of its flag.
fn apply_file(mut command: Command, path: &Path) -> anyhow::Result<Command> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        let id = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()) && !RESERVED.contains(&flag.as_str()))
            .map(|a| (a.get_id().clone(), matches!(a.get_action(), ArgAction::Append)));
        let Some((id, many)) = id else {
            bail!(
                "unknown key `{key}` in the config file {}: keys are the long flags of {} (see --help)",
                path.display(),
                command.get_name()
            );
        };
        let values = values_of(value).with_context(|| format!("key `{key}` in the config file {}", path.display()))?;
        if values.len() != 1 && !many {
            bail!(
                "key `{key}` in the config file {} takes one value, not a list",
                path.display()
            );
        }
        command = command.mut_arg(id, |arg| arg.default_values(values));
    }
    Ok(command)
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
    }
}
