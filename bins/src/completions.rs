//! Shell completion scripts, generated from the binaries' own flag definitions by
//! clap_complete: `ffrtmp completions bash|zsh|fish`, and `--completions SHELL` on
//! `ffrtmp-master` and `ffrtmp-agent`.

use clap::CommandFactory;
pub use clap_complete::Shell;

/// Writes the completion script of the command line `A` for `shell` to standard output.
pub fn print<A: CommandFactory>(shell: Shell) {
    let mut command = A::command();
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
}
