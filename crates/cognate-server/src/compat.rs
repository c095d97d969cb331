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
    out.push_str(TRIGGERS);
    out
}

/// The Lambda triggers and the sources Cognate runs them for (their tests are in
/// crates/cognate-e2e/tests/triggers*.rs).
const TRIGGERS: &str = "## Lambda triggers

| trigger | trigger sources run | not run |\n|---|---|---|\n| PreSignUp | PreSignUp_SignUp, _AdminCreateUser, _ExternalProvider | |\n| PostConfirmation | PostConfirmation_ConfirmSignUp (ConfirmSignUp, AdminConfirmSignUp), _ConfirmForgotPassword | |\n| PreAuthentication | PreAuthentication_Authentication (userNotFound for unknown logins where the client hides user existence) | |\n| PostAuthentication | PostAuthentication_Authentication | |\n| Define/Create/VerifyAuthChallenge | CUSTOM_AUTH, with or without SRP first | USER_AUTH has no custom path |\n| PreTokenGeneration V1_0, V2_0, V3_0 | TokenGeneration_Authentication, _HostedAuth, _NewPasswordChallenge, _AuthenticateDevice, _RefreshTokens, _ClientCredentials (V3_0) | |\n| UserMigration | UserMigration_Authentication (plain-password flows), _ForgotPassword | SRP sign-ins (no password to give the function, as in Cognito) |\n| CustomMessage | _SignUp, _AdminCreateUser, _ResendCode, _ForgotPassword, _UpdateUserAttribute, _VerifyUserAttribute, _Authentication | links (`{##...##}`) |\n| CustomEmailSender, CustomSMSSender | the same sources; codes in the AWS Encryption SDK format under `--custom-sender-key` | _AccountTakeOverNotification |\n| InboundFederation | InboundFederation_ExternalProvider (OIDC and SAML providers; a SAML one shows `samlResponse`, the attributes by Name) | social providers |\n| Cognito Sync SyncTrigger | UpdateRecords with an identity's credentials | |\n";
