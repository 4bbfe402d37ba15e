//! Reading a secret the policy names by reference: an environment variable or a file.

/// The secret in variable `env` or else in `file`, trimmed; an error, for a person, when it
/// is unset, unreadable or empty.
pub fn read_secret(env: Option<&str>, file: Option<&str>) -> Result<String, String> {
    let text = match (env, file) {
        (Some(var), _) => std::env::var(var).map_err(|_| format!("{var} is not set"))?,
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?,
        (None, None) => return Err("no variable or file is named".into()),
    };
    let secret = text.trim();
    if secret.is_empty() {
        return Err(match (env, file) {
            (Some(var), _) => format!("{var} is empty"),
            (None, Some(file)) => format!("{file} is empty"),
            (None, None) => unreachable!("answered above"),
        });
    }
    Ok(secret.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "  s3cret \n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(read_secret(None, Some(path)).unwrap(), "s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(
            read_secret(None, Some(path))
                .unwrap_err()
                .contains("is empty")
        );
        assert!(
            read_secret(Some("SWARMPILOT_TEST_NO_SUCH_VAR"), None)
                .unwrap_err()
                .contains("is not set")
        );
        assert!(read_secret(None, Some("/nonexistent/pw")).is_err());
    }
}
