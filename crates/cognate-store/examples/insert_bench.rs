//! Measures user inserts (what AdminCreateUser does in the store) into one
//! pool from several threads, and then `search_users` pages on the filled
//! pool.
//!
//! ```text
//! cargo run --release -p cognate-store --example insert_bench -- [options]
//!   --users N          users to insert (default 200000)
//!   --threads N        inserting threads (default 8)
//!   --step N           report the insert rate every N users (default 100000)
//!   --db PATH          SQLite file to use (default: a temporary file)
//!   --postgres URL     use PostgreSQL instead, in schema `cognate_bench`
//!   --outbox           also append an outbox message per user (an invitation)
//!   --search-only      skip inserting: measure searches on an existing --db / schema
//! ```
//!
//! Users look like the server's: a random username key and sub, and eight
//! search pairs plus one alias (the email) each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cognate_store::{OutboxMessage, Store, StoreResult, UserIndex, UserPoolRecord, UserRecord};

const POOL: &str = "us-east-1_Bench";
const PG_SCHEMA: &str = "cognate_bench";

struct Options {
    users: usize,
    threads: usize,
    step: usize,
    db: Option<String>,
    postgres: Option<String>,
    outbox: bool,
    search_only: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        users: 200_000,
        threads: 8,
        step: 100_000,
        db: None,
        postgres: None,
        outbox: false,
        search_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |s: String| s.replace('_', "").parse::<usize>().map_err(|e| format!("{s}: {e}"));
        match arg.as_str() {
            "--users" => o.users = number(value("--users")?)?,
            "--threads" => o.threads = number(value("--threads")?)?.max(1),
            "--step" => o.step = number(value("--step")?)?.max(1),
            "--db" => o.db = Some(value("--db")?),
            "--postgres" => o.postgres = Some(value("--postgres")?),
            "--outbox" => o.outbox = true,
            "--search-only" => o.search_only = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A bijection on u64 (splitmix64's finaliser): distinct, random-looking keys.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn username_key(i: usize) -> String {
    format!("u{:016x}", mix(i as u64))
}

fn email(i: usize) -> String {
    format!("user{i}@example.com")
}

fn bench_user(i: usize) -> (UserRecord, UserIndex) {
    let key = username_key(i);
    let h = mix(!(i as u64));
    let sub = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 40) & 0xfff,
        mix(h) & 0xffff_ffff_ffff
    );
    let email = email(i);
    let phone = format!("+1555{:07}", i % 10_000_000);
    let (given, family) = (format!("Given{}", i % 1000), format!("Family{}", i % 7919));
    let attributes = format!(
        r#"{{"sub":"{sub}","email":"{email}","email_verified":"true","phone_number":"{phone}","given_name":"{given}","family_name":"{family}"}}"#
    );
    let user = UserRecord {
        pool_id: POOL.into(),
        username: key.clone(),
        username_key: key.clone().into(),
        sub: sub.clone().into(),
        status: cognate_store::UserStatus::ForceChangePassword,
        enabled: true,
        created_ms: 1_700_000_000_000,
        modified_ms: 1_700_000_000_000,
        version: 1,
        attributes,
        // About the size of a sealed SRP verifier.
        password: Some(format!("v1.{}", "A".repeat(420))),
        doc: r#"{"mfa":[],"devices":0}"#.into(),
    };
    let pairs = |list: [(&str, &str); 8]| list.iter().map(|(a, v)| ((*a).to_owned(), (*v).to_owned())).collect();
    let index = UserIndex {
        search: pairs([
            ("username", &key),
            ("sub", &sub),
            ("cognito:user_status", "FORCE_CHANGE_PASSWORD"),
            ("status", "Enabled"),
            ("email", &email),
            ("phone_number", &phone),
            ("given_name", &given),
            ("family_name", &family),
        ]),
        aliases: vec![("email".into(), email.clone())],
    };
    (user, index)
}

fn open(o: &Options) -> Result<(Arc<dyn Store>, Option<tempfile::TempDir>), String> {
    if let Some(url) = &o.postgres {
        if !o.search_only {
            let mut c = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")).map_err(|e| e.to_string())?;
        }
        let store = cognate_store::open_postgres_in_schema(url, PG_SCHEMA).map_err(|e| e.to_string())?;
        return Ok((store, None));
    }
    let (path, dir) = match &o.db {
        Some(p) => (std::path::PathBuf::from(p), None),
        None => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            (dir.path().join("bench.db"), Some(dir))
        }
    };
    if !o.search_only {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    println!("SQLite database: {}", path.display());
    let store = cognate_store::open_sqlite(&path).map_err(|e| e.to_string())?;
    Ok((store, dir))
}

fn insert_all(store: &Arc<dyn Store>, o: &Options) -> Result<(), String> {
    store
        .insert_user_pool(&UserPoolRecord {
            id: POOL.into(),
            name: "bench".into(),
            created_ms: 1,
            modified_ms: 1,
            version: 1,
            doc: "{}".into(),
        })
        .map_err(|e| e.to_string())?;
    println!(
        "inserting {} users from {} threads ({} backend{})",
        o.users,
        o.threads,
        store.backend(),
        if o.outbox { ", with an outbox message each" } else { "" }
    );
    println!("{:>20}  {:>14}  {:>14}", "users", "inserts/s", "cumulative/s");
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= o.users {
                    break;
                }
                let (user, index) = bench_user(i);
                let mut result = store.insert_user(&user, &index);
                if result.is_ok() && o.outbox {
                    let msg = OutboxMessage {
                        id: 0,
                        pool_id: POOL.into(),
                        username: user.username.clone(),
                        channel: "EMAIL".into(),
                        destination: email(i),
                        code: Some("Tmp#Pass1".into()),
                        subject: Some("Your temporary password".into()),
                        body: "Your username is {username} and temporary password is {####}.".into(),
                        created_ms: 1,
                    };
                    result = store.append_message(&msg).map(|_| ());
                }
                if let Err(e) = result {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("insert {i} failed: {e}");
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        // Report from the main thread.
        let mut mark = 0;
        let mut mark_at = start;
        while mark < o.users {
            std::thread::sleep(Duration::from_millis(20));
            let n = done.load(Ordering::Relaxed);
            let target = (mark + o.step).min(o.users);
            if n >= target {
                let now = Instant::now();
                let interval = (target - mark) as f64 / (now - mark_at).as_secs_f64();
                let total = target as f64 / (now - start).as_secs_f64();
                println!("{:>20}  {:>14.0}  {:>14.0}", format!("{mark}..{target}"), interval, total);
                mark = target;
                mark_at = now;
            }
        }
    });
    let elapsed = start.elapsed();
    println!(
        "{} users in {:.1} s: {:.0} inserts/s overall, {} failed",
        o.users,
        elapsed.as_secs_f64(),
        o.users as f64 / elapsed.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    let count = store.count_users(POOL).map_err(|e| e.to_string())?;
    println!("count_users: {count}");
    Ok(())
}

fn time<T>(store: &dyn Store, what: &str, f: impl Fn(&dyn Store) -> T, describe: impl Fn(&T) -> String) {
    const RUNS: usize = 25;
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = f(store);
        times.push(t.elapsed());
        last = Some(out);
    }
    let first = times[0];
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<58} first {:>7.2} ms  median {:>6.2} ms  max {:>6.2} ms  ({})",
        ms(first),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
        last.as_ref().map(&describe).unwrap_or_default()
    );
}

fn page(r: &StoreResult<Vec<UserRecord>>) -> String {
    match r {
        Ok(v) => format!("{} users", v.len()),
        Err(e) => format!("error: {e}"),
    }
}

fn measure_searches(store: &dyn Store, users: usize) {
    let count = store.count_users(POOL).unwrap_or(0);
    println!("\nsearch_users / list_users pages (limit 60) on {count} users, {} backend:", store.backend());
    let mid = username_key(users / 2);
    time(
        store,
        "equality cognito:user_status=FORCE_CHANGE_PASSWORD, page 1",
        |s| s.search_users(POOL, "cognito:user_status", "FORCE_CHANGE_PASSWORD", false, None, 60),
        page,
    );
    time(
        store,
        "equality cognito:user_status, page from the middle",
        |s| {
            s.search_users(
                POOL,
                "cognito:user_status",
                "FORCE_CHANGE_PASSWORD",
                false,
                Some(("FORCE_CHANGE_PASSWORD", &mid)),
                60,
            )
        },
        page,
    );
    let one = email(users / 3);
    time(store, &format!("equality email={one}"), |s| s.search_users(POOL, "email", &one, false, None, 60), page);
    for prefix in ["user1", "user12345", "user99999", "nomatch"] {
        time(
            store,
            &format!("prefix email^=\"{prefix}\", page 1"),
            |s| s.search_users(POOL, "email", prefix, true, None, 60),
            page,
        );
    }
    let cursor = email(150_000.min(users.saturating_sub(1)));
    time(
        store,
        &format!("prefix email^=\"user1\", page after {cursor}"),
        |s| s.search_users(POOL, "email", "user1", true, Some((&cursor, "")), 60),
        page,
    );
    time(
        store,
        "prefix given_name^=\"Given9\", page 1",
        |s| s.search_users(POOL, "given_name", "Given9", true, None, 60),
        page,
    );
    time(store, "list_users page 1", |s| s.list_users(POOL, None, 60), page);
    time(store, "list_users page from the middle", |s| s.list_users(POOL, Some(&mid), 60), page);
    time(
        store,
        "count_users",
        |s| s.count_users(POOL),
        |r| match r {
            Ok(n) => format!("{n}"),
            Err(e) => format!("error: {e}"),
        },
    );
    time(
        store,
        "get_user_by_alias email",
        |s| s.get_user_by_alias(POOL, "email", &one),
        |r| match r {
            Ok(u) => format!("found: {}", u.is_some()),
            Err(e) => format!("error: {e}"),
        },
    );
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (store, _dir) = match open(&o) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opening the store: {e}");
            std::process::exit(1);
        }
    };
    if !o.search_only {
        if let Err(e) = insert_all(&store, &o) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    measure_searches(store.as_ref(), o.users);
}
