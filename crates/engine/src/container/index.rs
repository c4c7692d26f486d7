//! Finding a container the way Docker's `GetContainer` does: full ID first, then name
//! (`/` optional), then a unique ID prefix; plus the name → ID index that makes names unique.

use std::collections::HashMap;

use super::ContainerError;

/// Names (with their leading `/`) → container ID.
#[derive(Debug, Default, Clone)]
pub struct NameIndex {
    by_name: HashMap<String, String>,
}

impl NameIndex {
    /// Reserves `name` (with `/`) for `id`; a name held by another container is Docker's
    /// 409 conflict. Reserving a name the same container holds is a no-op.
    pub fn reserve(&mut self, name: &str, id: &str) -> Result<(), ContainerError> {
        match self.by_name.get(name) {
            Some(owner) if owner != id => Err(ContainerError::NameConflict {
                name: name.to_string(),
                id: owner.clone(),
            }),
            _ => {
                self.by_name.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Frees one name.
    pub fn release(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// Frees every name of a container.
    pub fn release_id(&mut self, id: &str) {
        self.by_name.retain(|_, owner| owner != id);
    }

    /// The ID holding `name` (`/` optional).
    pub fn id_of(&self, name: &str) -> Option<&str> {
        let key = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        self.by_name.get(&key).map(String::as_str)
    }

    /// Whether `name` (with `/`) is taken.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

/// Resolves `query` against the names and the IDs, as Docker's `GetContainer`.
pub fn resolve<'a>(
    names: &NameIndex,
    ids: impl Iterator<Item = &'a String> + Clone,
    query: &str,
) -> Result<String, ContainerError> {
    if query.is_empty() {
        return Err(ContainerError::NotFound(query.to_string()));
    }
    if let Some(id) = ids.clone().find(|id| id.as_str() == query) {
        return Ok(id.clone());
    }
    if let Some(id) = names.id_of(query) {
        return Ok(id.to_string());
    }
    let mut matches = ids.filter(|id| id.starts_with(query));
    match (matches.next(), matches.next()) {
        (Some(id), None) => Ok(id.clone()),
        (Some(_), Some(_)) => Err(ContainerError::AmbiguousPrefix(query.to_string())),
        (None, _) => Err(ContainerError::NotFound(query.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec![
            format!("abc1{}", "0".repeat(60)),
            format!("abc2{}", "0".repeat(60)),
            format!("def0{}", "0".repeat(60)),
        ]
    }

    #[test]
    fn lookup_order_is_full_id_then_name_then_unique_prefix() {
        let ids = ids();
        let mut names = NameIndex::default();
        names.reserve("/web", &ids[0]).expect("reserve");
        // A name that looks like a prefix of another container's ID: the name wins.
        names.reserve("/def", &ids[1]).expect("reserve");
        assert_eq!(resolve(&names, ids.iter(), &ids[2]).expect("id"), ids[2]);
        assert_eq!(resolve(&names, ids.iter(), "web").expect("name"), ids[0]);
        assert_eq!(resolve(&names, ids.iter(), "/web").expect("name"), ids[0]);
        assert_eq!(resolve(&names, ids.iter(), "def").expect("name"), ids[1]);
        assert_eq!(resolve(&names, ids.iter(), "abc2").expect("prefix"), ids[1]);
    }

    #[test]
    fn ambiguous_and_missing_lookups_use_dockers_texts() {
        let ids = ids();
        let names = NameIndex::default();
        let err = resolve(&names, ids.iter(), "abc").expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            "multiple IDs found with provided prefix: abc"
        );
        let err = resolve(&names, ids.iter(), "nosuch").expect_err("missing");
        assert_eq!(err.to_string(), "No such container: nosuch");
        assert_eq!(err.kind(), crate::error::ErrorKind::NotFound);
    }

    #[test]
    fn a_taken_name_is_a_conflict_naming_the_holder() {
        let mut names = NameIndex::default();
        names.reserve("/x", "id1").expect("reserve");
        names.reserve("/x", "id1").expect("same holder");
        let err = names.reserve("/x", "id2").expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "Conflict. The container name \"/x\" is already in use by container \"id1\". \
             You have to remove (or rename) that container to be able to reuse that name."
        );
        names.release_id("id1");
        names.reserve("/x", "id2").expect("freed");
        assert_eq!(names.id_of("x"), Some("id2"));
    }
}
