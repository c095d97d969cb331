//! The schema migrations, listed once for both backends. Each entry names a
//! file that must exist under `migrations/sqlite/` and `migrations/postgres/`
//! (`NAME.sql`); both are embedded in the binary, so a missing file fails the
//! build, and the test below fails on a file no entry names.

use crate::db::Migration;

macro_rules! migrations {
    ($(($version:literal, $name:literal)),* $(,)?) => {
        /// Every migration as `(version, name)`, in order.
        #[cfg(test)]
        const LIST: &[(i64, &str)] = &[$(($version, $name)),*];

        pub(crate) const SQLITE: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
        }),*];

        pub(crate) const POSTGRES: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }),*];
    };
}

migrations![
    (1, "0001_init"),
    (2, "0002_users"),
    (3, "0003_client_lookup"),
    (4, "0004_auth"),
    (5, "0005_groups"),
    (6, "0006_import_jobs"),
    (7, "0007_rate_windows"),
    (8, "0008_import_leases"),
    (9, "0009_user_count_shards"),
    (10, "0010_attempt_counters"),
    (11, "0011_outbox_retention"),
    (12, "0012_identities"),
    (13, "0013_sync"),
    (14, "0014_sync_notifications"),
    (15, "0015_domains"),
    (16, "0016_managed_login_brandings"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn files_in(backend: &str) -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    /// Each backend's directory holds exactly one `.sql` file per listed
    /// migration, and nothing else.
    #[test]
    fn every_backend_has_a_file_for_every_migration_and_no_other() {
        let listed: BTreeSet<String> = LIST.iter().map(|(_, name)| format!("{name}.sql")).collect();
        assert_eq!(listed.len(), LIST.len(), "a migration is listed twice");
        for backend in ["sqlite", "postgres"] {
            assert_eq!(files_in(backend), listed, "migrations/{backend}/ does not match the migration list");
        }
    }

    /// Versions count up from 1 and each name starts with its zero-padded
    /// version, so file order is apply order.
    #[test]
    fn versions_are_consecutive_and_match_the_names() {
        for (i, (version, name)) in LIST.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1, "{name}");
            assert!(name.starts_with(&format!("{version:04}_")), "{name} does not start with {version:04}_");
        }
        for list in [SQLITE, POSTGRES] {
            crate::db::check_migration_list(list).unwrap();
            let pairs: Vec<(i64, &str)> = list.iter().map(|m| (m.version, m.name)).collect();
            assert_eq!(pairs, LIST);
            assert!(list.iter().all(|m| !m.sql.trim().is_empty()));
        }
    }
}
