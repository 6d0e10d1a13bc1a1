//! Shell completion scripts, generated from the binaries' own flag definitions by
//! clap_complete: `ffrtmp completions bash|zsh|fish`, and `--completions SHELL` on
//! `ffrtmp-master` and `ffrtmp-agent`.

use std::io::Write;

use clap::CommandFactory;
pub use clap_complete::Shell;

/// Writes the completion script of the command line `A` for `shell` to standard output. A
/// reader that stops early (`| head`) is not an error.
pub fn print<A: CommandFactory>(shell: Shell) -> anyhow::Result<()> {
    let mut command = A::command();
    let name = command.get_name().to_string();
    // Generated into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the completion script"))
        }
        _ => Ok(()),
    }
}
