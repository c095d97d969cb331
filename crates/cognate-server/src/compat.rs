//! Renders docs/COMPATIBILITY.md from the operation table, so the document cannot drift
//! from the code (a test fails when it is stale).

use cognate_api::{Operation, Service};

use crate::ops::declared;

pub fn render() -> String {
    let mut out = String::from(
        "# Compatibility\n\n\
         Generated from the operation table (`crates/cognate-api`, pinned botocore models) and the list of\n\
         implemented operations (`crates/cognate-server/src/ops/mod.rs`); do not edit by hand.\n\
         An operation marked *not yet* answers `UnsupportedOperationException` (HTTP 400) naming itself.\n\n",
    );
    for service in Service::ALL {
        let ops: Vec<&Operation> = Operation::of_service(service).collect();
        let done = ops.iter().filter(|op| declared(op).is_some()).count();
        out.push_str(&format!(
            "## {} ({done} of {} implemented)\n\n| operation | auth | state |\n|---|---|---|\n",
            service.signing_name(),
            ops.len()
        ));
        for op in ops {
            let auth = if op.signed { "SigV4" } else { "public" };
            let state = if declared(op).is_some() { "implemented" } else { "not yet" };
            out.push_str(&format!("| {} | {auth} | {state} |\n", op.name));
        }
        out.push('\n');
    }
    out
}
