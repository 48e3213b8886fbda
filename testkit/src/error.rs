//! The kit's one error type: a sentence saying what failed and what to do.
//! Tests turn it into a panic; the benchmark prints it as `bench: FAIL …`.

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KitError(pub String);

pub type KitResult<T> = Result<T, KitError>;

impl KitError {
    pub fn new(msg: impl Into<String>) -> Self {
        KitError(msg.into())
    }
}

impl From<std::io::Error> for KitError {
    fn from(e: std::io::Error) -> Self {
        KitError(e.to_string())
    }
}
