//! Groups: CreateGroup, GetGroup, UpdateGroup, DeleteGroup and ListGroups
//! (with pagination), the memberships (AdminAddUserToGroup,
//! AdminRemoveUserFromGroup, AdminListGroupsForUser, ListUsersInGroup, both
//! paginated), that deleting a group or a user removes its memberships, and
//! the group claims of the tokens (`cognito:groups`, `cognito:roles`,
//! `cognito:preferred_role`) ordered by precedence. Every test runs against
//! SQLite and PostgreSQL.

use std::collections::HashSet;

use cognate_e2e::idp::types::{AuthFlowType, ExplicitAuthFlowsType, GroupType, MessageActionType, UserType};
use cognate_e2e::{
    attr_of, b64url_decode, both_stores, epoch, expect_code, expect_err, is_uuid, now_epoch, ok, sorted, unique_name,
    App, Server, PASSWORD,
};
use serde_json::{json, Value};

both_stores!(
    group_crud_echoes_every_parameter,
    update_group_keeps_the_fields_not_given,
    group_errors,
    list_groups_paginates_25_groups,
    list_groups_limit_bounds,
    memberships_both_ways,
    list_users_in_group_paginates_70_users,
    admin_list_groups_for_user_paginates_65_groups,
    deleting_a_group_removes_its_memberships,
    deleting_a_user_removes_their_memberships,
    token_claims_follow_precedence,
    token_claims_follow_membership_and_group_changes,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const ROLE_A: &str = "arn:aws:iam::000000000000:role/group-a";
const ROLE_B: &str = "arn:aws:iam::000000000000:role/group-b";
const ROLE_C: &str = "arn:aws:iam::000000000000:role/group-c";

/// CreateGroup with the optional parameters given.
async fn create_group(
    server: &Server,
    pool: &str,
    name: &str,
    description: Option<&str>,
    role: Option<&str>,
    precedence: Option<i32>,
) -> GroupType {
    ok(server
        .idp()
        .create_group()
        .user_pool_id(pool)
        .group_name(name)
        .set_description(description.map(str::to_string))
        .set_role_arn(role.map(str::to_string))
        .set_precedence(precedence)
        .send()
        .await)
    .group
    .expect("CreateGroup returned no Group")
}

async fn get_group(server: &Server, pool: &str, name: &str) -> GroupType {
    ok(server.idp().get_group().user_pool_id(pool).group_name(name).send().await).group.expect("GetGroup: no Group")
}

/// A CONFIRMED user with a permanent password.
async fn create_user(server: &Server, pool: &str, username: &str) -> UserType {
    let user = ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .temporary_password("Temp-Passw0rd")
        .message_action(MessageActionType::Suppress)
        .send()
        .await)
    .user
    .expect("AdminCreateUser returned no User");
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    user
}

async fn add(server: &Server, pool: &str, user: &str, group: &str) {
    ok(server.idp().admin_add_user_to_group().user_pool_id(pool).username(user).group_name(group).send().await);
}

async fn remove(server: &Server, pool: &str, user: &str, group: &str) {
    ok(server.idp().admin_remove_user_from_group().user_pool_id(pool).username(user).group_name(group).send().await);
}

/// Pages of ListGroups (group names of each page).
async fn group_pages(server: &Server, pool: &str, limit: Option<i32>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let out = ok(server
            .idp()
            .list_groups()
            .user_pool_id(pool)
            .set_limit(limit)
            .set_next_token(token.clone())
            .send()
            .await);
        pages.push(out.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return pages,
        }
    }
    panic!("ListGroups did not stop paginating");
}

/// Pages of AdminListGroupsForUser (group names of each page).
async fn groups_for_user_pages(server: &Server, pool: &str, user: &str, limit: Option<i32>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let out = ok(server
            .idp()
            .admin_list_groups_for_user()
            .user_pool_id(pool)
            .username(user)
            .set_limit(limit)
            .set_next_token(token.clone())
            .send()
            .await);
        for g in out.groups() {
            assert_eq!(g.user_pool_id(), Some(pool), "AdminListGroupsForUser: {g:?}");
        }
        pages.push(out.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return pages,
        }
    }
    panic!("AdminListGroupsForUser did not stop paginating");
}

/// Pages of ListUsersInGroup (the users of each page).
async fn users_in_group_pages(server: &Server, pool: &str, group: &str, limit: Option<i32>) -> Vec<Vec<UserType>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let out = ok(server
            .idp()
            .list_users_in_group()
            .user_pool_id(pool)
            .group_name(group)
            .set_limit(limit)
            .set_next_token(token.clone())
            .send()
            .await);
        pages.push(out.users().to_vec());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return pages,
        }
    }
    panic!("ListUsersInGroup did not stop paginating");
}

/// Sorted group names of the user (every page).
async fn groups_of(server: &Server, pool: &str, user: &str) -> Vec<String> {
    sorted(&groups_for_user_pages(server, pool, user, None).await.concat())
}

/// Sorted usernames of the group's members (every page).
async fn members_of(server: &Server, pool: &str, group: &str) -> Vec<String> {
    let users = users_in_group_pages(server, pool, group, None).await.concat();
    let names: Vec<&str> = users.iter().filter_map(|u| u.username()).collect();
    sorted(&names)
}

/// Every name of `pages` exactly once, and they are exactly `expected`.
#[track_caller]
fn assert_each_once(pages: &[Vec<String>], expected: &[String], what: &str) {
    let all: Vec<String> = pages.concat();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "{what}: a name is listed twice: {pages:?}");
    assert_eq!(sorted(&all), sorted(expected), "{what}: pages {pages:?}");
}

#[track_caller]
fn assert_recent(t: Option<&aws_smithy_types::DateTime>, what: &str) -> f64 {
    let t = epoch(t.unwrap_or_else(|| panic!("{what} is missing")));
    assert!((t - now_epoch()).abs() < 300.0, "{what} {t} is not now ({})", now_epoch());
    t
}

/// A pool and a client allowing ADMIN_USER_PASSWORD_AUTH.
async fn auth_app(server: &Server) -> App {
    let pool = server.new_pool(|p| p).await;
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(unique_name("app"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .expect("CreateUserPoolClient returned no client");
    App { pool, client: client.client_id().expect("ClientId").to_string(), secret: None }
}

/// The claims of the ID and access tokens of a fresh ADMIN_USER_PASSWORD_AUTH.
async fn sign_in(server: &Server, app: &App, username: &str) -> (Value, Value) {
    let out = ok(server
        .idp()
        .admin_initiate_auth()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await);
    let result = out.authentication_result().unwrap_or_else(|| panic!("no AuthenticationResult: {out:?}"));
    (claims(result.id_token().expect("IdToken")), claims(result.access_token().expect("AccessToken")))
}

/// The (unverified) payload of a JWT.
fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS in compact form: {token:?}");
    serde_json::from_slice(&b64url_decode(parts[1]))
        .unwrap_or_else(|e| panic!("the JWT payload is not JSON ({e}): {token}"))
}

/// Check the group claims of a sign-in: `groups` in order, the roles in the
/// same order and the preferred role; `None` where a claim must be absent.
#[track_caller]
fn assert_group_claims(
    (id, access): &(Value, Value),
    groups: Option<&[&str]>,
    roles: Option<&[&str]>,
    preferred: Option<&str>,
) {
    assert_eq!(id.get("cognito:groups"), groups.map(|g| json!(g)).as_ref(), "ID token cognito:groups: {id}");
    assert_eq!(
        access.get("cognito:groups"),
        groups.map(|g| json!(g)).as_ref(),
        "access token cognito:groups: {access}"
    );
    assert_eq!(id.get("cognito:roles"), roles.map(|r| json!(r)).as_ref(), "ID token cognito:roles: {id}");
    assert_eq!(
        id.get("cognito:preferred_role"),
        preferred.map(|p| json!(p)).as_ref(),
        "ID token cognito:preferred_role: {id}"
    );
    assert_eq!(access.get("token_use"), Some(&json!("access")), "{access}");
    assert_eq!(id.get("token_use"), Some(&json!("id")), "{id}");
}

// ---------------------------------------------------------------------------
// CRUD
// ---------------------------------------------------------------------------

async fn group_crud_echoes_every_parameter(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let full = create_group(server, &pool, "admins", Some("The administrators"), Some(ROLE_A), Some(7)).await;
    assert_eq!(full.group_name(), Some("admins"));
    assert_eq!(full.user_pool_id(), Some(pool.as_str()));
    assert_eq!(full.description(), Some("The administrators"));
    assert_eq!(full.role_arn(), Some(ROLE_A));
    assert_eq!(full.precedence(), Some(7));
    let created = assert_recent(full.creation_date(), "CreationDate");
    let modified = assert_recent(full.last_modified_date(), "LastModifiedDate");
    assert!(modified >= created, "LastModifiedDate {modified} < CreationDate {created}");

    // GetGroup answers the same group.
    let got = get_group(server, &pool, "admins").await;
    assert_eq!(got, full, "GetGroup differs from CreateGroup's answer");

    // Only a name: the optional fields are absent, precedence 0 is kept.
    let bare = create_group(server, &pool, "bare", None, None, None).await;
    assert_eq!(bare.group_name(), Some("bare"));
    assert_eq!((bare.description(), bare.role_arn(), bare.precedence()), (None, None, None), "{bare:?}");
    assert_recent(bare.creation_date(), "CreationDate");
    assert_eq!(get_group(server, &pool, "bare").await, bare);
    let zero = create_group(server, &pool, "zero", None, None, Some(0)).await;
    assert_eq!(zero.precedence(), Some(0));
    assert_eq!(get_group(server, &pool, "zero").await.precedence(), Some(0));

    // Names with Unicode letters, symbols and punctuation are fine.
    let odd = "Équipe+é_ü.@-1";
    assert_eq!(create_group(server, &pool, odd, None, None, None).await.group_name(), Some(odd));
    assert_eq!(get_group(server, &pool, odd).await.group_name(), Some(odd));

    // ListGroups lists them all with every field.
    let out = ok(server.idp().list_groups().user_pool_id(&pool).send().await);
    assert!(out.next_token().is_none());
    let listed: Vec<&str> = out.groups().iter().filter_map(|g| g.group_name()).collect();
    assert_eq!(sorted(&listed), sorted(&["admins", "bare", "zero", odd]));
    let listed_admins = out.groups().iter().find(|g| g.group_name() == Some("admins")).expect("admins listed");
    assert_eq!(listed_admins, &full, "ListGroups entry differs from CreateGroup's answer");

    // DeleteGroup.
    ok(server.idp().delete_group().user_pool_id(&pool).group_name("admins").send().await);
    let msg = expect_code(
        server.idp().get_group().user_pool_id(&pool).group_name("admins").send().await,
        "ResourceNotFoundException",
    );
    assert_eq!(msg, "Group not found.");
    let out = ok(server.idp().list_groups().user_pool_id(&pool).send().await);
    let listed: Vec<&str> = out.groups().iter().filter_map(|g| g.group_name()).collect();
    assert_eq!(sorted(&listed), sorted(&["bare", "zero", odd]));

    // The name can be used again, by a new group without the old fields.
    let again = create_group(server, &pool, "admins", None, None, None).await;
    assert_eq!((again.description(), again.role_arn(), again.precedence()), (None, None, None), "{again:?}");

    // Deleting the pool deletes its groups.
    ok(server.idp().delete_user_pool().user_pool_id(&pool).send().await);
    expect_code(server.idp().list_groups().user_pool_id(&pool).send().await, "ResourceNotFoundException");
}

async fn update_group_keeps_the_fields_not_given(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let created = create_group(server, &pool, "team", Some("first"), Some(ROLE_A), Some(3)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Only the description.
    let out = ok(server.idp().update_group().user_pool_id(&pool).group_name("team").description("second").send().await)
        .group
        .expect("UpdateGroup returned no Group");
    assert_eq!(out.description(), Some("second"));
    assert_eq!(out.role_arn(), Some(ROLE_A), "RoleArn was not given: kept");
    assert_eq!(out.precedence(), Some(3), "Precedence was not given: kept");
    assert_eq!(out.group_name(), Some("team"));
    assert_eq!(out.user_pool_id(), Some(pool.as_str()));
    assert_eq!(out.creation_date(), created.creation_date(), "CreationDate changed");
    let modified = epoch(out.last_modified_date().expect("LastModifiedDate"));
    assert!(
        modified > epoch(created.last_modified_date().expect("LastModifiedDate")),
        "LastModifiedDate did not advance: {out:?} vs {created:?}"
    );
    assert_eq!(get_group(server, &pool, "team").await, out, "GetGroup differs from UpdateGroup's answer");

    // Only the role and the precedence.
    let out = ok(server
        .idp()
        .update_group()
        .user_pool_id(&pool)
        .group_name("team")
        .role_arn(ROLE_B)
        .precedence(0)
        .send()
        .await)
    .group
    .expect("UpdateGroup returned no Group");
    assert_eq!(out.description(), Some("second"), "Description was not given: kept");
    assert_eq!(out.role_arn(), Some(ROLE_B));
    assert_eq!(out.precedence(), Some(0));
    assert_eq!(get_group(server, &pool, "team").await, out);

    // Nothing at all: nothing changes.
    let before = get_group(server, &pool, "team").await;
    ok(server.idp().update_group().user_pool_id(&pool).group_name("team").send().await);
    let after = get_group(server, &pool, "team").await;
    assert_eq!(
        (after.description(), after.role_arn(), after.precedence(), after.creation_date()),
        (before.description(), before.role_arn(), before.precedence(), before.creation_date())
    );

    // A group without the optional fields gets them.
    create_group(server, &pool, "plain", None, None, None).await;
    let out = ok(server
        .idp()
        .update_group()
        .user_pool_id(&pool)
        .group_name("plain")
        .description("now described")
        .role_arn(ROLE_C)
        .precedence(42)
        .send()
        .await)
    .group
    .expect("UpdateGroup returned no Group");
    assert_eq!((out.description(), out.role_arn(), out.precedence()), (Some("now described"), Some(ROLE_C), Some(42)));
    assert_eq!(get_group(server, &pool, "plain").await, out);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

async fn group_errors(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let original = create_group(server, &pool, "g", Some("original"), Some(ROLE_A), Some(1)).await;
    create_user(server, &pool, "alice").await;

    // A duplicate changes nothing.
    let info = expect_err(
        server.idp().create_group().user_pool_id(&pool).group_name("g").description("dup").precedence(9).send().await,
    );
    assert_eq!((info.status, info.code.as_str()), (400, "GroupExistsException"), "{info:?}");
    assert_eq!(get_group(server, &pool, "g").await, original, "a failed CreateGroup changed the group");
    // Group names are case-sensitive.
    create_group(server, &pool, "G", None, None, None).await;
    // The same name in another pool is another group.
    let other = server.new_pool(|p| p).await;
    create_group(server, &other, "g", None, None, None).await;
    assert_eq!(get_group(server, &pool, "g").await, original);

    // Unknown groups.
    let idp = server.idp();
    let msg =
        expect_code(idp.get_group().user_pool_id(&pool).group_name("nope").send().await, "ResourceNotFoundException");
    assert_eq!(msg, "Group not found.");
    let msg = expect_code(
        idp.update_group().user_pool_id(&pool).group_name("nope").description("x").send().await,
        "ResourceNotFoundException",
    );
    assert_eq!(msg, "Group not found.");
    let msg = expect_code(
        idp.delete_group().user_pool_id(&pool).group_name("nope").send().await,
        "ResourceNotFoundException",
    );
    assert_eq!(msg, "Group not found.");
    expect_code(
        idp.list_users_in_group().user_pool_id(&pool).group_name("nope").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.admin_add_user_to_group().user_pool_id(&pool).username("alice").group_name("nope").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.admin_remove_user_from_group().user_pool_id(&pool).username("alice").group_name("nope").send().await,
        "ResourceNotFoundException",
    );

    // Unknown users.
    let msg = expect_code(
        idp.admin_add_user_to_group().user_pool_id(&pool).username("nobody").group_name("g").send().await,
        "UserNotFoundException",
    );
    assert_eq!(msg, "User does not exist.");
    expect_code(
        idp.admin_remove_user_from_group().user_pool_id(&pool).username("nobody").group_name("g").send().await,
        "UserNotFoundException",
    );
    expect_code(
        idp.admin_list_groups_for_user().user_pool_id(&pool).username("nobody").send().await,
        "UserNotFoundException",
    );
    assert!(members_of(server, &pool, "g").await.is_empty(), "a failed AdminAddUserToGroup added someone");
    assert!(groups_of(server, &pool, "alice").await.is_empty());

    // Unknown pools.
    let ghost = "us-east-1_Nonexist0";
    expect_code(idp.create_group().user_pool_id(ghost).group_name("g").send().await, "ResourceNotFoundException");
    expect_code(idp.get_group().user_pool_id(ghost).group_name("g").send().await, "ResourceNotFoundException");
    expect_code(idp.list_groups().user_pool_id(ghost).send().await, "ResourceNotFoundException");
    expect_code(
        idp.list_users_in_group().user_pool_id(ghost).group_name("g").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.admin_add_user_to_group().user_pool_id(ghost).username("alice").group_name("g").send().await,
        "ResourceNotFoundException",
    );

    // Invalid parameters create nothing.
    let invalid = [
        idp.create_group().user_pool_id(&pool).group_name("neg").precedence(-1).send().await,
        idp.create_group().user_pool_id(&pool).group_name("x".repeat(129)).send().await,
        idp.create_group().user_pool_id(&pool).group_name("").send().await,
        idp.create_group().user_pool_id(&pool).group_name("has space").send().await,
        idp.create_group().user_pool_id(&pool).group_name("badrole").role_arn("not-an-arn").send().await,
        idp.create_group().user_pool_id(&pool).group_name("longdesc").description("d".repeat(2049)).send().await,
    ];
    for (i, res) in invalid.into_iter().enumerate() {
        let info = expect_err(res);
        assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "case {i}: {info:?}");
    }
    let info = expect_err(idp.update_group().user_pool_id(&pool).group_name("g").precedence(-1).send().await);
    assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "{info:?}");
    assert_eq!(get_group(server, &pool, "g").await, original, "a failed UpdateGroup changed the group");
    let out = ok(idp.list_groups().user_pool_id(&pool).send().await);
    let listed: Vec<&str> = out.groups().iter().filter_map(|g| g.group_name()).collect();
    assert_eq!(sorted(&listed), sorted(&["G", "g"]), "a failed CreateGroup created a group");
    // 128 characters are allowed.
    create_group(server, &pool, &"x".repeat(128), None, None, None).await;
}

// ---------------------------------------------------------------------------
// ListGroups
// ---------------------------------------------------------------------------

async fn list_groups_paginates_25_groups(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let names: Vec<String> = (0..25).map(|i| format!("group-{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        let precedence = if i % 3 == 0 { None } else { Some(25 - i as i32) };
        create_group(server, &pool, name, Some(&format!("number {i}")), None, precedence).await;
    }
    let pages = group_pages(server, &pool, Some(7)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7, 7, 4], "page sizes: {pages:?}");
    assert_each_once(&pages, &names, "ListGroups Limit 7");

    // Without a Limit, one page of everything.
    let pages = group_pages(server, &pool, None).await;
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_each_once(&pages, &names, "ListGroups");

    // Limit 25 exactly: one page, no token.
    let pages = group_pages(server, &pool, Some(25)).await;
    assert_eq!(pages.len(), 1, "Limit 25 over 25 groups: {pages:?}");
    // Limit 1: 25 pages.
    let pages = group_pages(server, &pool, Some(1)).await;
    assert_eq!(pages.len(), 25, "{pages:?}");
    assert_each_once(&pages, &names, "ListGroups Limit 1");

    // A group deleted between pages is not listed later; the others still are, once.
    let first = ok(server.idp().list_groups().user_pool_id(&pool).limit(10).send().await);
    let seen: Vec<String> = first.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect();
    let token = first.next_token().expect("NextToken").to_string();
    let victim = names.iter().find(|n| !seen.contains(n)).expect("an unseen group").clone();
    ok(server.idp().delete_group().user_pool_id(&pool).group_name(&victim).send().await);
    let mut rest = vec![seen];
    let mut token = Some(token);
    while let Some(t) = token {
        let out = ok(server.idp().list_groups().user_pool_id(&pool).limit(10).next_token(t).send().await);
        rest.push(out.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect());
        token = out.next_token().filter(|t| !t.is_empty()).map(str::to_string);
    }
    let remaining: Vec<String> = names.iter().filter(|n| **n != victim).cloned().collect();
    assert_each_once(&rest, &remaining, "ListGroups with a deletion between pages");

    // An empty pool.
    let empty = server.new_pool(|p| p).await;
    let out = ok(server.idp().list_groups().user_pool_id(&empty).send().await);
    assert!(out.groups().is_empty());
    assert!(out.next_token().is_none());
}

async fn list_groups_limit_bounds(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    for name in ["a", "b", "c"] {
        create_group(server, &pool, name, None, None, None).await;
    }
    for limit in [61, -1, 1000] {
        let info = expect_err(server.idp().list_groups().user_pool_id(&pool).limit(limit).send().await);
        assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "Limit {limit}: {info:?}");
    }
    let out = ok(server.idp().list_groups().user_pool_id(&pool).limit(60).send().await);
    assert_eq!(out.groups().len(), 3);
    assert!(out.next_token().is_none());
    let out = ok(server.idp().list_groups().user_pool_id(&pool).limit(1).send().await);
    assert_eq!(out.groups().len(), 1);
    assert!(out.next_token().is_some());
    // A token the server never issued.
    let info = expect_err(server.idp().list_groups().user_pool_id(&pool).next_token("not-a-real-token").send().await);
    assert_eq!(info.status, 400, "a bogus NextToken: {info:?}");
    // Limit bounds of the membership listings.
    create_user(server, &pool, "u").await;
    let info =
        expect_err(server.idp().admin_list_groups_for_user().user_pool_id(&pool).username("u").limit(61).send().await);
    assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "{info:?}");
    let info =
        expect_err(server.idp().list_users_in_group().user_pool_id(&pool).group_name("a").limit(61).send().await);
    assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "{info:?}");
}

// ---------------------------------------------------------------------------
// Memberships
// ---------------------------------------------------------------------------

async fn memberships_both_ways(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    for (name, precedence) in [("red", Some(2)), ("green", Some(1)), ("blue", None)] {
        create_group(server, &pool, name, Some(&format!("the {name} team")), Some(ROLE_A), precedence).await;
    }
    let alice = create_user(server, &pool, "alice").await;
    create_user(server, &pool, "bob").await;
    create_user(server, &pool, "carol").await;

    for g in ["red", "green", "blue"] {
        add(server, &pool, "alice", g).await;
    }
    add(server, &pool, "bob", "red").await;
    // Idempotent.
    add(server, &pool, "alice", "red").await;
    add(server, &pool, "alice", "red").await;

    assert_eq!(groups_of(server, &pool, "alice").await, ["blue", "green", "red"]);
    assert_eq!(groups_of(server, &pool, "bob").await, ["red"]);
    assert!(groups_of(server, &pool, "carol").await.is_empty());
    assert_eq!(members_of(server, &pool, "red").await, ["alice", "bob"]);
    assert_eq!(members_of(server, &pool, "green").await, ["alice"]);

    // AdminListGroupsForUser answers the full groups.
    let out = ok(server.idp().admin_list_groups_for_user().user_pool_id(&pool).username("alice").send().await);
    assert!(out.next_token().is_none());
    let red = out.groups().iter().find(|g| g.group_name() == Some("red")).expect("red listed");
    assert_eq!(red, &get_group(server, &pool, "red").await, "AdminListGroupsForUser entry differs from GetGroup");

    // Paginated with Limit 2.
    let pages = groups_for_user_pages(server, &pool, "alice", Some(2)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1], "{pages:?}");
    assert_each_once(&pages, &["red".into(), "green".into(), "blue".into()], "AdminListGroupsForUser Limit 2");

    // ListUsersInGroup answers UserType.
    let users = users_in_group_pages(server, &pool, "green", None).await.concat();
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!(u.username(), Some("alice"));
    assert!(u.enabled());
    assert_eq!(u.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    let sub = attr_of(u.attributes(), "sub").expect("sub attribute");
    assert!(is_uuid(sub), "{u:?}");
    assert_eq!(Some(sub), attr_of(alice.attributes(), "sub"));
    assert!(u.user_create_date().is_some() && u.user_last_modified_date().is_some(), "{u:?}");
    let pages = users_in_group_pages(server, &pool, "red", Some(1)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1], "{pages:?}");

    // Removing.
    remove(server, &pool, "alice", "red").await;
    assert_eq!(groups_of(server, &pool, "alice").await, ["blue", "green"]);
    assert_eq!(members_of(server, &pool, "red").await, ["bob"]);
    remove(server, &pool, "bob", "red").await;
    assert!(members_of(server, &pool, "red").await.is_empty());
    assert!(groups_of(server, &pool, "bob").await.is_empty());
    // The group itself is untouched.
    assert_eq!(get_group(server, &pool, "red").await.description(), Some("the red team"));

    // Memberships are per pool: the same names elsewhere are separate.
    let other = server.new_pool(|p| p).await;
    create_group(server, &other, "green", None, None, None).await;
    create_user(server, &other, "alice").await;
    assert!(members_of(server, &other, "green").await.is_empty());
    assert!(groups_of(server, &other, "alice").await.is_empty());
}

async fn list_users_in_group_paginates_70_users(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_group(server, &pool, "big", None, None, None).await;
    create_group(server, &pool, "other", None, None, None).await;
    let names: Vec<String> = (0..70).map(|i| format!("user-{i:02}")).collect();
    for name in &names {
        create_user(server, &pool, name).await;
        add(server, &pool, name, "big").await;
    }
    create_user(server, &pool, "outsider").await;
    add(server, &pool, "outsider", "other").await;

    let pages = users_in_group_pages(server, &pool, "big", Some(60)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [60, 10], "page sizes");
    let page_names: Vec<Vec<String>> =
        pages.iter().map(|p| p.iter().filter_map(|u| u.username().map(str::to_string)).collect()).collect();
    assert_each_once(&page_names, &names, "ListUsersInGroup Limit 60");
    for u in pages.concat() {
        assert!(attr_of(u.attributes(), "sub").is_some_and(is_uuid), "{u:?}");
    }

    // Without a Limit: at most 60 a page, all of them once.
    let pages = users_in_group_pages(server, &pool, "big", None).await;
    assert!(pages.iter().all(|p| p.len() <= 60), "a page is larger than 60");
    let page_names: Vec<Vec<String>> =
        pages.iter().map(|p| p.iter().filter_map(|u| u.username().map(str::to_string)).collect()).collect();
    assert_each_once(&page_names, &names, "ListUsersInGroup");

    let pages = users_in_group_pages(server, &pool, "big", Some(7)).await;
    assert_eq!(pages.len(), 10, "70 users by 7");
    let page_names: Vec<Vec<String>> =
        pages.iter().map(|p| p.iter().filter_map(|u| u.username().map(str::to_string)).collect()).collect();
    assert_each_once(&page_names, &names, "ListUsersInGroup Limit 7");
}

async fn admin_list_groups_for_user_paginates_65_groups(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_user(server, &pool, "joiner").await;
    create_user(server, &pool, "other").await;
    let names: Vec<String> = (0..65).map(|i| format!("g{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        create_group(server, &pool, name, None, None, Some(i as i32 % 5)).await;
        add(server, &pool, "joiner", name).await;
    }
    create_group(server, &pool, "not-joined", None, None, None).await;
    add(server, &pool, "other", "not-joined").await;

    let pages = groups_for_user_pages(server, &pool, "joiner", Some(60)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [60, 5], "page sizes: {pages:?}");
    assert_each_once(&pages, &names, "AdminListGroupsForUser Limit 60");
    let pages = groups_for_user_pages(server, &pool, "joiner", Some(10)).await;
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert_each_once(&pages, &names, "AdminListGroupsForUser Limit 10");
    let pages = groups_for_user_pages(server, &pool, "joiner", None).await;
    assert!(pages.iter().all(|p| p.len() <= 60), "a page is larger than 60");
    assert_each_once(&pages, &names, "AdminListGroupsForUser");
}

async fn deleting_a_group_removes_its_memberships(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_group(server, &pool, "doomed", None, Some(ROLE_A), Some(1)).await;
    create_group(server, &pool, "kept", None, None, Some(2)).await;
    for u in ["ann", "ben"] {
        create_user(server, &pool, u).await;
        add(server, &pool, u, "doomed").await;
        add(server, &pool, u, "kept").await;
    }
    ok(server.idp().delete_group().user_pool_id(&pool).group_name("doomed").send().await);
    for u in ["ann", "ben"] {
        assert_eq!(groups_of(server, &pool, u).await, ["kept"], "{u}'s groups after DeleteGroup");
    }
    assert_eq!(members_of(server, &pool, "kept").await, ["ann", "ben"]);
    expect_code(
        server.idp().list_users_in_group().user_pool_id(&pool).group_name("doomed").send().await,
        "ResourceNotFoundException",
    );
    // A new group of the same name starts empty.
    create_group(server, &pool, "doomed", None, None, None).await;
    assert!(members_of(server, &pool, "doomed").await.is_empty(), "the old memberships came back");
    assert_eq!(groups_of(server, &pool, "ann").await, ["kept"]);
    // The users are untouched.
    assert_eq!(server.usernames(&pool).await, ["ann", "ben"]);
}

async fn deleting_a_user_removes_their_memberships(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_group(server, &pool, "one", None, None, None).await;
    create_group(server, &pool, "two", None, None, None).await;
    for u in ["dan", "eve"] {
        create_user(server, &pool, u).await;
        add(server, &pool, u, "one").await;
        add(server, &pool, u, "two").await;
    }
    ok(server.idp().admin_delete_user().user_pool_id(&pool).username("dan").send().await);
    assert_eq!(members_of(server, &pool, "one").await, ["eve"]);
    assert_eq!(members_of(server, &pool, "two").await, ["eve"]);
    expect_code(
        server.idp().admin_list_groups_for_user().user_pool_id(&pool).username("dan").send().await,
        "UserNotFoundException",
    );
    // A new user of the same name starts without groups.
    create_user(server, &pool, "dan").await;
    assert!(groups_of(server, &pool, "dan").await.is_empty(), "the old memberships came back");
    assert_eq!(members_of(server, &pool, "one").await, ["eve"]);
    // The groups are untouched.
    assert_eq!(get_group(server, &pool, "one").await.group_name(), Some("one"));
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

async fn token_claims_follow_precedence(server: &Server) {
    let app = auth_app(server).await;
    let pool = &app.pool;
    create_user(server, pool, "tess").await;

    // No groups: no group claims.
    let tokens = sign_in(server, &app, "tess").await;
    assert_group_claims(&tokens, None, None, None);

    // Three groups of different precedences and roles, created out of order.
    create_group(server, pool, "low", None, Some(ROLE_C), Some(30)).await;
    create_group(server, pool, "high", None, Some(ROLE_A), Some(1)).await;
    create_group(server, pool, "mid", None, Some(ROLE_B), Some(10)).await;
    for g in ["low", "mid", "high"] {
        add(server, pool, "tess", g).await;
    }
    let tokens = sign_in(server, &app, "tess").await;
    assert_group_claims(&tokens, Some(&["high", "mid", "low"]), Some(&[ROLE_A, ROLE_B, ROLE_C]), Some(ROLE_A));

    // Groups without precedence come last, by name; groups without a role
    // are not in the roles; the preferred role is that of the most preferred
    // group that has one.
    create_group(server, pool, "top-no-role", None, None, Some(0)).await;
    create_group(server, pool, "zz-none", None, Some("arn:aws:iam::000000000000:role/zz"), None).await;
    create_group(server, pool, "aa-none", None, None, None).await;
    for g in ["zz-none", "top-no-role", "aa-none"] {
        add(server, pool, "tess", g).await;
    }
    let tokens = sign_in(server, &app, "tess").await;
    assert_group_claims(
        &tokens,
        Some(&["top-no-role", "high", "mid", "low", "aa-none", "zz-none"]),
        Some(&[ROLE_A, ROLE_B, ROLE_C, "arn:aws:iam::000000000000:role/zz"]),
        Some(ROLE_A),
    );

    // Another member of only role-less groups: groups, but no roles.
    create_user(server, pool, "uma").await;
    add(server, pool, "uma", "aa-none").await;
    add(server, pool, "uma", "top-no-role").await;
    let tokens = sign_in(server, &app, "uma").await;
    assert_group_claims(&tokens, Some(&["top-no-role", "aa-none"]), None, None);
}

async fn token_claims_follow_membership_and_group_changes(server: &Server) {
    let app = auth_app(server).await;
    let pool = &app.pool;
    create_user(server, pool, "vic").await;
    create_group(server, pool, "first", None, Some(ROLE_A), Some(1)).await;
    create_group(server, pool, "second", None, Some(ROLE_B), Some(2)).await;
    create_group(server, pool, "third", None, Some(ROLE_C), Some(3)).await;
    for g in ["first", "second", "third"] {
        add(server, pool, "vic", g).await;
    }
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, Some(&["first", "second", "third"]), Some(&[ROLE_A, ROLE_B, ROLE_C]), Some(ROLE_A));

    // Removed from the most preferred group: the next token changes.
    remove(server, pool, "vic", "first").await;
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, Some(&["second", "third"]), Some(&[ROLE_B, ROLE_C]), Some(ROLE_B));

    // UpdateGroup: a new precedence reorders, a new role is used.
    ok(server.idp().update_group().user_pool_id(pool).group_name("third").precedence(0).role_arn(ROLE_A).send().await);
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, Some(&["third", "second"]), Some(&[ROLE_A, ROLE_B]), Some(ROLE_A));

    // DeleteGroup: gone from the token.
    ok(server.idp().delete_group().user_pool_id(pool).group_name("third").send().await);
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, Some(&["second"]), Some(&[ROLE_B]), Some(ROLE_B));

    // Removed from the last group: no group claims at all.
    remove(server, pool, "vic", "second").await;
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, None, None, None);

    // Added back.
    add(server, pool, "vic", "first").await;
    let tokens = sign_in(server, &app, "vic").await;
    assert_group_claims(&tokens, Some(&["first"]), Some(&[ROLE_A]), Some(ROLE_A));
}
