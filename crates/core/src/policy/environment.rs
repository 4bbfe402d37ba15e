//! What the policy checks may ask of the machine they run on. The checks never look at the
//! machine themselves: the controller answers from the OS, tests from a list.

/// Which environment variables are set and which files exist, as far as the checks need it.
pub trait Environment {
    /// Whether the environment variable `name` is set.
    fn var_is_set(&self, name: &str) -> bool;
    /// Whether `path` names an existing regular file.
    fn file_exists(&self, path: &str) -> bool;
}

/// An environment given as lists: the variables that are set and the files that exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedEnvironment {
    /// Names of the variables that are set.
    pub vars: Vec<String>,
    /// Paths of the files that exist.
    pub files: Vec<String>,
}

impl Environment for ListedEnvironment {
    fn var_is_set(&self, name: &str) -> bool {
        self.vars.iter().any(|v| v == name)
    }

    fn file_exists(&self, path: &str) -> bool {
        self.files.iter().any(|f| f == path)
    }
}
