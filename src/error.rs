//! The library's error type.
//!
//! Every error says *what* (the file, the model, the setting) and *what went wrong*, and where it
//! can, what to do next. Modules with a richer vocabulary of failures (reading a document, the
//! catalog, resolving model files) have their own `thiserror` enums and convert into this one.
//! Not for: formatting errors for the terminal (that is `cli`'s job, with `anyhow` at the edge).

use std::path::PathBuf;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document could not be used: unreadable, binary, empty, too large...
    #[error("{}: {problem}", path.display())]
    Input { path: PathBuf, problem: String },

    /// A model file is missing, corrupt or unsupported.
    #[error("model '{model}': {message}")]
    Model { model: String, message: String },

    /// The tokenizer failed (building it from a model file, or encoding text).
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// The run was interrupted (Ctrl-C, SIGTERM) before this work was finished.
    #[error("interrupted")]
    Interrupted,

    /// Anything else, with its full message.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    /// An error about one model, named as the catalog names it.
    pub fn model(model: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Model {
            model: model.into(),
            message: message.to_string(),
        }
    }

    /// An error about one input file.
    pub fn input(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        Error::Input {
            path: path.into(),
            problem: problem.to_string(),
        }
    }

    pub fn msg(message: impl std::fmt::Display) -> Self {
        Error::Msg(message.to_string())
    }
}
