//! What can go wrong bringing up or tearing down the local node.

use std::process::{Command, Output};

/// The local node could not start, or a step of it failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Something the node needs is not on this machine.
    #[error("the node needs {what}, which is missing; fix: {fix}")]
    Missing {
        /// What is missing (a program, a file, a privilege).
        what: String,
        /// The command or step that fixes it.
        fix: String,
    },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Every candidate bridge subnet overlaps an address already on this machine.
    #[error("no free /24 for the node's bridge in {range}: every one overlaps an address or route on this machine")]
    NoSubnet {
        /// The range searched.
        range: String,
    },
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

/// Runs `cmd` to completion; an error names the command and carries its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, NodeError> {
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().map_err(io(format!("run {line}")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(NodeError::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
