//! Remembered devices: registration at sign-in, ConfirmDevice with the device's SRP
//! verifier, listing, status and forgetting (self-service and admin).

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};

use cognate_core::access::authenticate;
use cognate_core::context::{timestamp, Ctx};
use cognate_core::devices::device_not_found;
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::sealed::{self, Purpose};
use cognate_core::users::{self, Device, User};

fn device_view(device: &Device) -> DeviceType {
    let mut attributes = vec![AttributeType { name: "device_status".into(), value: Some(Sensitive("valid".into())) }];
    if let Some(name) = &device.name {
        attributes.push(AttributeType { name: "device_name".into(), value: Some(Sensitive(name.clone())) });
    }
    if let Some(remembered) = device.remembered {
        let status = if remembered { "remembered" } else { "not_remembered" };
        attributes
            .push(AttributeType { name: "dev:device_remembered_status".into(), value: Some(Sensitive(status.into())) });
    }
    DeviceType {
        device_key: Some(device.key.clone()),
        device_attributes: Some(attributes),
        device_create_date: Some(timestamp(device.created_ms)),
        device_last_modified_date: Some(timestamp(device.modified_ms)),
        device_last_authenticated_date: Some(timestamp(device.last_auth_ms)),
    }
}

fn decode_b64(text: &str) -> ApiResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ApiError::invalid_parameter("DeviceSecretVerifierConfig must be base64."))
}

pub async fn confirm_device(ctx: Ctx, input: ConfirmDeviceRequest) -> ApiResult<ConfirmDeviceResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let config = input
        .device_secret_verifier_config
        .as_ref()
        .ok_or_else(|| ApiError::invalid_parameter("DeviceSecretVerifierConfig is required."))?;
    let verifier = decode_b64(config.password_verifier.as_deref().unwrap_or_default())?;
    let salt = decode_b64(config.salt.as_deref().unwrap_or_default())?;
    cognate_crypto::srp::check_verifier(&verifier)
        .map_err(|_| ApiError::invalid_parameter("Invalid device password verifier."))?;
    let pool = caller.pool.pool;
    let mut user = caller.user;
    let prompt = pool.device_configuration.as_ref().and_then(|c| c.device_only_remembered_on_user_prompt) == Some(true);
    let sealed_secret = sealed::seal(
        &ctx,
        Purpose::DeviceVerifier { pool_id: &caller.pool_id, device_key: &input.device_key },
        &(hex::encode(&verifier), hex::encode(&salt)),
    )?;
    let now = ctx.now_ms();
    let device = user.doc.device_mut(&input.device_key).ok_or_else(device_not_found)?;
    device.secret = Some(sealed_secret);
    device.name = input.device_name.clone().or(device.name.take());
    device.remembered = if prompt { None } else { Some(true) };
    device.modified_ms = now;
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(ConfirmDeviceResponse { user_confirmation_necessary: Some(prompt) })
}

fn page(
    devices: &[Device],
    limit: Option<i32>,
    token: Option<&String>,
) -> ApiResult<(Vec<DeviceType>, Option<String>)> {
    let limit = limit.filter(|l| *l > 0).map(|l| l.min(60) as usize).unwrap_or(60);
    let after = cognate_core::records::page_after(token)?;
    let mut sorted: Vec<&Device> = devices.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let rest: Vec<&Device> =
        sorted.into_iter().filter(|d| after.as_ref().is_none_or(|a| d.key.as_str() > a.as_str())).collect();
    let next = (rest.len() > limit).then(|| cognate_core::records::page_token(&rest[limit - 1].key));
    Ok((rest.into_iter().take(limit).map(device_view).collect(), next))
}

fn set_status(user: &mut User, key: &str, status: Option<&DeviceRememberedStatusType>, now: i64) -> ApiResult<()> {
    let device = user.doc.device_mut(key).ok_or_else(device_not_found)?;
    device.remembered = match status {
        Some(DeviceRememberedStatusType::Remembered) => Some(true),
        Some(DeviceRememberedStatusType::NotRemembered) => Some(false),
        _ => return Err(ApiError::invalid_parameter("DeviceRememberedStatus must be remembered or not_remembered.")),
    };
    device.modified_ms = now;
    Ok(())
}

fn forget(user: &mut User, key: &str) -> ApiResult<()> {
    let before = user.doc.devices.len();
    user.doc.devices.retain(|d| d.key != key);
    if user.doc.devices.len() == before {
        return Err(device_not_found());
    }
    Ok(())
}

async fn token_caller(ctx: &Ctx, token: Option<&Sensitive<String>>) -> ApiResult<cognate_core::access::TokenUser> {
    let token = token.ok_or_else(|| ApiError::new(ErrorCode::NotAuthorizedException, "Invalid Access Token"))?;
    authenticate(ctx, token).await
}

pub async fn get_device(ctx: Ctx, input: GetDeviceRequest) -> ApiResult<GetDeviceResponse> {
    let caller = token_caller(&ctx, input.access_token.as_ref()).await?;
    let device = caller.user.doc.device(&input.device_key).ok_or_else(device_not_found)?;
    Ok(GetDeviceResponse { device: device_view(device) })
}

pub async fn list_devices(ctx: Ctx, input: ListDevicesRequest) -> ApiResult<ListDevicesResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let (devices, pagination_token) = page(&caller.user.doc.devices, input.limit, input.pagination_token.as_ref())?;
    Ok(ListDevicesResponse { devices: Some(devices), pagination_token })
}

pub async fn forget_device(ctx: Ctx, input: ForgetDeviceRequest) -> ApiResult<()> {
    let caller = token_caller(&ctx, input.access_token.as_ref()).await?;
    let mut user = caller.user;
    forget(&mut user, &input.device_key)?;
    users::save_user_or_fail(&ctx, &caller.pool.pool, &mut user).await
}

pub async fn update_device_status(ctx: Ctx, input: UpdateDeviceStatusRequest) -> ApiResult<UpdateDeviceStatusResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let mut user = caller.user;
    set_status(&mut user, &input.device_key, input.device_remembered_status.as_ref(), ctx.now_ms())?;
    users::save_user_or_fail(&ctx, &caller.pool.pool, &mut user).await?;
    Ok(UpdateDeviceStatusResponse {})
}

async fn admin_user(ctx: &Ctx, pool_id: &str, username: &str) -> ApiResult<(UserPoolType, User)> {
    let (_, doc) = cognate_core::records::load_pool(ctx, pool_id).await?;
    let user = users::require_user(ctx, pool_id, &doc.pool, username).await?;
    Ok((doc.pool, user))
}

pub async fn admin_get_device(ctx: Ctx, input: AdminGetDeviceRequest) -> ApiResult<AdminGetDeviceResponse> {
    let (_, user) = admin_user(&ctx, &input.user_pool_id, input.username.expose()).await?;
    let device = user.doc.device(&input.device_key).ok_or_else(device_not_found)?;
    Ok(AdminGetDeviceResponse { device: device_view(device) })
}

pub async fn admin_list_devices(ctx: Ctx, input: AdminListDevicesRequest) -> ApiResult<AdminListDevicesResponse> {
    let (_, user) = admin_user(&ctx, &input.user_pool_id, input.username.expose()).await?;
    let (devices, pagination_token) = page(&user.doc.devices, input.limit, input.pagination_token.as_ref())?;
    Ok(AdminListDevicesResponse { devices: Some(devices), pagination_token })
}

pub async fn admin_forget_device(ctx: Ctx, input: AdminForgetDeviceRequest) -> ApiResult<()> {
    let (pool, mut user) = admin_user(&ctx, &input.user_pool_id, input.username.expose()).await?;
    forget(&mut user, &input.device_key)?;
    users::save_user_or_fail(&ctx, &pool, &mut user).await
}

pub async fn admin_update_device_status(
    ctx: Ctx,
    input: AdminUpdateDeviceStatusRequest,
) -> ApiResult<AdminUpdateDeviceStatusResponse> {
    let (pool, mut user) = admin_user(&ctx, &input.user_pool_id, input.username.expose()).await?;
    set_status(&mut user, &input.device_key, input.device_remembered_status.as_ref(), ctx.now_ms())?;
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(AdminUpdateDeviceStatusResponse {})
}
