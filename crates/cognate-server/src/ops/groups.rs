//! Groups and memberships. Tokens carry a user's groups (`cognito:groups`, with
//! `cognito:roles` and `cognito:preferred_role`) ordered by precedence, as Cognito does.

use cognate_api::idp::*;
use cognate_api::ErrorCode;
use cognate_store::{GroupRecord, StoreError};

use cognate_core::context::{timestamp, Ctx};
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;
use cognate_core::users::{self, User};

/// Cognito's quotas: groups per pool, groups per user.
const MAX_GROUPS: u64 = 10_000;
use cognate_core::groups::MAX_GROUPS_PER_USER;

fn group_not_found() -> ApiError {
    ApiError::not_found("Group not found.")
}

use cognate_core::groups::view;

fn page_limit(limit: Option<i32>) -> usize {
    limit.filter(|l| *l > 0).map(|l| l.min(60) as usize).unwrap_or(60)
}

pub async fn create_group(ctx: Ctx, input: CreateGroupRequest) -> ApiResult<CreateGroupResponse> {
    load_pool(&ctx, &input.user_pool_id).await?;
    let now = ctx.now_ms();
    let group = GroupType {
        group_name: Some(input.group_name.clone()),
        user_pool_id: Some(input.user_pool_id.clone()),
        description: input.description,
        role_arn: input.role_arn,
        precedence: input.precedence,
        creation_date: Some(timestamp(now)),
        last_modified_date: Some(timestamp(now)),
    };
    let record = GroupRecord {
        pool_id: input.user_pool_id.clone(),
        name: input.group_name.clone(),
        created_ms: now,
        modified_ms: now,
        version: 1,
        doc: encode_doc(&group)?,
        precedence: group.precedence.map(i64::from),
    };
    match ctx.store(move |s| Ok(s.insert_group(&record, MAX_GROUPS))).await? {
        Ok(()) => Ok(CreateGroupResponse { group: Some(group) }),
        Err(StoreError::AlreadyExists(_)) => Err(ApiError::new(
            ErrorCode::GroupExistsException,
            format!("A group with the name {} already exists.", input.group_name),
        )),
        Err(StoreError::LimitExceeded) => {
            Err(ApiError::limit_exceeded(format!("The user pool has reached its limit of {MAX_GROUPS} groups.")))
        }
        Err(StoreError::NotFound(_)) => Err(pool_not_found(&input.user_pool_id)),
        Err(other) => Err(ApiError::internal(other)),
    }
}

async fn load_group(ctx: &Ctx, pool_id: &str, name: &str) -> ApiResult<GroupRecord> {
    load_pool(ctx, pool_id).await?;
    let (p, n) = (pool_id.to_owned(), name.to_owned());
    ctx.store(move |s| s.get_group(&p, &n)).await?.ok_or_else(group_not_found)
}

pub async fn get_group(ctx: Ctx, input: GetGroupRequest) -> ApiResult<GetGroupResponse> {
    let record = load_group(&ctx, &input.user_pool_id, &input.group_name).await?;
    Ok(GetGroupResponse { group: Some(view(&record)?) })
}

pub async fn update_group(ctx: Ctx, input: UpdateGroupRequest) -> ApiResult<UpdateGroupResponse> {
    let ctx = &ctx;
    let mut attempts = Attempts::new(ctx, "The group");
    loop {
        attempts.begin()?;
        let mut record = load_group(ctx, &input.user_pool_id, &input.group_name).await?;
        let mut group = view(&record)?;
        if input.description.is_some() {
            group.description = input.description.clone();
        }
        if input.role_arn.is_some() {
            group.role_arn = input.role_arn.clone();
        }
        if input.precedence.is_some() {
            group.precedence = input.precedence;
        }
        record.modified_ms = ctx.now_ms();
        group.last_modified_date = Some(timestamp(record.modified_ms));
        record.precedence = group.precedence.map(i64::from);
        record.version += 1;
        record.doc = encode_doc(&group)?;
        let answer = ctx.store(move |s| Ok(s.update_group(&record))).await?;
        if let Some(done) = written(answer, UpdateGroupResponse { group: Some(group) }, group_not_found)? {
            return Ok(done);
        }
    }
}

pub async fn delete_group(ctx: Ctx, input: DeleteGroupRequest) -> ApiResult<()> {
    load_pool(&ctx, &input.user_pool_id).await?;
    let (p, n) = (input.user_pool_id.clone(), input.group_name.clone());
    if ctx.store(move |s| s.delete_group(&p, &n)).await? {
        Ok(())
    } else {
        Err(group_not_found())
    }
}

pub async fn list_groups(ctx: Ctx, input: ListGroupsRequest) -> ApiResult<ListGroupsResponse> {
    load_pool(&ctx, &input.user_pool_id).await?;
    let limit = page_limit(input.limit);
    let after = page_after(input.next_token.as_ref())?;
    let pool = input.user_pool_id.clone();
    let records = ctx.store(move |s| s.list_groups(&pool, after.as_deref(), limit + 1)).await?;
    let (page, next_token) = split_page(records, limit, |r| r.name.clone());
    Ok(ListGroupsResponse { groups: Some(page.iter().map(view).collect::<ApiResult<_>>()?), next_token })
}

async fn group_and_user(ctx: &Ctx, pool_id: &str, group: &str, login: &str) -> ApiResult<User> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    let user = users::require_user(ctx, pool_id, &doc.pool, login).await?;
    let (p, n) = (pool_id.to_owned(), group.to_owned());
    ctx.store(move |s| s.get_group(&p, &n)).await?.ok_or_else(group_not_found)?;
    Ok(user)
}

pub async fn admin_add_user_to_group(ctx: Ctx, input: AdminAddUserToGroupRequest) -> ApiResult<()> {
    let user = group_and_user(&ctx, &input.user_pool_id, &input.group_name, input.username.expose()).await?;
    let (p, g, u) = (input.user_pool_id.clone(), input.group_name.clone(), user.record.username_key);
    match ctx.store(move |s| Ok(s.add_user_to_group(&p, &g, &u, MAX_GROUPS_PER_USER))).await? {
        Ok(_) => Ok(()),
        Err(StoreError::LimitExceeded) => {
            Err(ApiError::invalid_parameter(format!("A user can belong to at most {MAX_GROUPS_PER_USER} groups.")))
        }
        Err(StoreError::NotFound(_)) => Err(group_not_found()),
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn admin_remove_user_from_group(ctx: Ctx, input: AdminRemoveUserFromGroupRequest) -> ApiResult<()> {
    let user = group_and_user(&ctx, &input.user_pool_id, &input.group_name, input.username.expose()).await?;
    let (p, g, u) = (input.user_pool_id.clone(), input.group_name.clone(), user.record.username_key);
    ctx.store(move |s| s.remove_user_from_group(&p, &g, &u)).await?;
    Ok(())
}

pub async fn admin_list_groups_for_user(
    ctx: Ctx,
    input: AdminListGroupsForUserRequest,
) -> ApiResult<AdminListGroupsForUserResponse> {
    let (_, doc) = load_pool(&ctx, &input.user_pool_id).await?;
    let user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    let limit = page_limit(input.limit);
    let after = page_after(input.next_token.as_ref())?;
    let (p, u) = (input.user_pool_id.clone(), user.record.username_key);
    let records = ctx.store(move |s| s.list_groups_for_user(&p, &u, after.as_deref(), limit + 1)).await?;
    let (page, next_token) = split_page(records, limit, |r| r.name.clone());
    Ok(AdminListGroupsForUserResponse { groups: Some(page.iter().map(view).collect::<ApiResult<_>>()?), next_token })
}

pub async fn list_users_in_group(ctx: Ctx, input: ListUsersInGroupRequest) -> ApiResult<ListUsersInGroupResponse> {
    load_group(&ctx, &input.user_pool_id, &input.group_name).await?;
    let limit = page_limit(input.limit);
    let after = page_after(input.next_token.as_ref())?;
    let (p, g) = (input.user_pool_id.clone(), input.group_name.clone());
    let records = ctx.store(move |s| s.list_users_in_group(&p, &g, after.as_deref(), limit + 1)).await?;
    let (page, next_token) = split_page(records, limit, |r| r.username_key.to_string());
    let users =
        page.into_iter().map(|r| User::from_record(r).map(|u| u.to_user_type(None))).collect::<ApiResult<_>>()?;
    Ok(ListUsersInGroupResponse { users: Some(users), next_token })
}
