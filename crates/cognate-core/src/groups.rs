//! A user's groups as tokens carry them: `cognito:groups`, with `cognito:roles` and
//! `cognito:preferred_role`, ordered by precedence, as Cognito does.

use cognate_api::idp::GroupType;
use cognate_store::{GroupRecord, UsernameKey};

use crate::context::Ctx;
use crate::error::ApiResult;
use crate::records::decode_doc;

/// Cognito's quota of groups per user.
pub const MAX_GROUPS_PER_USER: u64 = 100;

pub fn view(record: &GroupRecord) -> ApiResult<GroupType> {
    decode_doc(&record.doc)
}

/// The token claims of a user's groups: names ordered by precedence (then name), the
/// groups' role ARNs in the same order, and the role of the most preferred group.
pub async fn token_claims(
    ctx: &Ctx,
    pool_id: &str,
    username_key: &UsernameKey,
) -> ApiResult<Vec<(String, serde_json::Value)>> {
    let (p, u) = (pool_id.to_owned(), username_key.to_owned());
    let mut groups: Vec<GroupType> = ctx
        .store(move |s| s.list_groups_for_user(&p, &u, None, MAX_GROUPS_PER_USER as usize))
        .await?
        .iter()
        .map(view)
        .collect::<ApiResult<_>>()?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    groups.sort_by(|a, b| {
        (a.precedence.is_none(), a.precedence, &a.group_name).cmp(&(
            b.precedence.is_none(),
            b.precedence,
            &b.group_name,
        ))
    });
    let names: Vec<String> = groups.iter().filter_map(|g| g.group_name.clone()).collect();
    let roles: Vec<String> = groups.iter().filter_map(|g| g.role_arn.clone()).collect();
    let mut claims = vec![("cognito:groups".to_owned(), serde_json::json!(names))];
    if !roles.is_empty() {
        claims.push(("cognito:roles".to_owned(), serde_json::json!(roles)));
        if let Some(preferred) = groups.iter().find_map(|g| g.role_arn.clone()) {
            claims.push(("cognito:preferred_role".to_owned(), serde_json::json!(preferred)));
        }
    }
    Ok(claims)
}
