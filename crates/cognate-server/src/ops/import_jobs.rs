//! User import jobs: CreateUserImportJob hands out a pre-signed URL that Cognate serves
//! itself (a client PUTs the CSV to it exactly as it would to S3), StartUserImportJob imports
//! the rows in the background with counters moving as it goes, StopUserImportJob stops it.
//! Imported users are RESET_REQUIRED; each failed row's reason is kept in the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use cognate_store::{ImportJobRecord, StoreError};
use serde::{Deserialize, Serialize};

use super::common::*;
use crate::error::{ApiError, ApiResult};
use crate::state::{timestamp, AppState, Caller, Ctx};
use crate::users::attributes::{check_changes, Writer};
use crate::users::{self, NewUser, User, UserDoc};

/// Cognito's quota of import jobs per pool.
const MAX_JOBS: u64 = 1000;
/// Counters are written back every this many rows while a job runs.
const PROGRESS_EVERY: usize = 100;
/// At most this many row failures are listed in CompletionMessage.
const LISTED_FAILURES: usize = 20;
/// Largest CSV accepted (Cognito's limit is 100 MB).
pub const MAX_CSV_BYTES: usize = 100 * 1024 * 1024;

/// What the store keeps for a job: the API view plus the upload capability.
#[derive(Clone, Serialize, Deserialize)]
struct JobDoc {
    job: UserImportJobType,
    /// Random token in the pre-signed URL; the upload must present it.
    upload_token: String,
    #[serde(default)]
    failures: Vec<String>,
}

fn job_not_found(job_id: &str) -> ApiError {
    ApiError::not_found(format!("Import job {job_id} does not exist."))
}

fn status(doc: &JobDoc) -> UserImportJobStatusType {
    doc.job.status.clone().unwrap_or(UserImportJobStatusType::Created)
}

async fn load_job(ctx: &Ctx, pool_id: &str, job_id: &str) -> ApiResult<(ImportJobRecord, JobDoc)> {
    load_pool(ctx, pool_id).await?;
    let (p, j) = (pool_id.to_owned(), job_id.to_owned());
    let record = ctx.store(move |s| s.get_import_job(&p, &j)).await?.ok_or_else(|| job_not_found(job_id))?;
    let doc = decode_doc(&record.doc)?;
    Ok((record, doc))
}

/// Read-modify-write of a job with compare-and-set.
async fn modify_job<F>(ctx: &Ctx, pool_id: &str, job_id: &str, mut change: F) -> ApiResult<JobDoc>
where
    F: FnMut(&mut JobDoc) -> ApiResult<()>,
{
    for _ in 0..8 {
        let (mut record, mut doc) = load_job(ctx, pool_id, job_id).await?;
        change(&mut doc)?;
        record.version += 1;
        record.modified_ms = ctx.now_ms();
        record.doc = encode_doc(&doc)?;
        match ctx.store(move |s| Ok(s.update_import_job(&record))).await? {
            Ok(()) => return Ok(doc),
            Err(StoreError::VersionConflict) => continue,
            Err(StoreError::NotFound) => return Err(job_not_found(job_id)),
            Err(other) => return Err(ApiError::internal(other)),
        }
    }
    Err(ApiError::new(ErrorCode::TooManyRequestsException, "The import job was modified concurrently; retry."))
}

pub async fn create_user_import_job(
    ctx: Ctx,
    input: CreateUserImportJobRequest,
) -> ApiResult<CreateUserImportJobResponse> {
    load_pool(&ctx, &input.user_pool_id).await?;
    if input.password_hashing_algorithm.is_some() {
        return Err(ApiError::invalid_parameter(
            "Importing password hashes (PasswordHashingAlgorithm) is not supported by Cognate yet.",
        ));
    }
    let job_id = format!(
        "import-{}",
        cognate_crypto::ids::random_string(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)
    );
    let token = hex::encode(cognate_crypto::ids::random_bytes::<24>());
    let now = ctx.now_ms();
    let job = UserImportJobType {
        job_name: Some(input.job_name),
        job_id: Some(job_id.clone()),
        user_pool_id: Some(input.user_pool_id.clone()),
        pre_signed_url: Some(format!("{}/_cognate/import/{job_id}?token={token}", ctx.config().public_url)),
        creation_date: Some(timestamp(now)),
        status: Some(UserImportJobStatusType::Created),
        cloud_watch_logs_role_arn: Some(input.cloud_watch_logs_role_arn),
        imported_users: Some(0),
        skipped_users: Some(0),
        failed_users: Some(0),
        ..Default::default()
    };
    let doc = JobDoc { job: job.clone(), upload_token: token, failures: Vec::new() };
    let record = ImportJobRecord {
        pool_id: input.user_pool_id.clone(),
        job_id,
        created_ms: now,
        modified_ms: now,
        version: 1,
        doc: encode_doc(&doc)?,
    };
    match ctx.store(move |s| Ok(s.insert_import_job(&record, MAX_JOBS))).await? {
        Ok(()) => Ok(CreateUserImportJobResponse { user_import_job: Some(job) }),
        Err(StoreError::LimitExceeded) => {
            Err(ApiError::limit_exceeded(format!("The user pool has reached its limit of {MAX_JOBS} import jobs.")))
        }
        Err(StoreError::NotFound) => Err(pool_not_found(&input.user_pool_id)),
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn describe_user_import_job(
    ctx: Ctx,
    input: DescribeUserImportJobRequest,
) -> ApiResult<DescribeUserImportJobResponse> {
    let (_, doc) = load_job(&ctx, &input.user_pool_id, &input.job_id).await?;
    Ok(DescribeUserImportJobResponse { user_import_job: Some(doc.job) })
}

#[derive(Serialize, Deserialize)]
struct JobPosition {
    created_ms: i64,
    job_id: String,
}

pub async fn list_user_import_jobs(
    ctx: Ctx,
    input: ListUserImportJobsRequest,
) -> ApiResult<ListUserImportJobsResponse> {
    load_pool(&ctx, &input.user_pool_id).await?;
    let limit = input.max_results.clamp(1, 60) as usize;
    let after: Option<JobPosition> = match page_after(input.pagination_token.as_ref())? {
        Some(text) => {
            Some(serde_json::from_str(&text).map_err(|_| ApiError::invalid_parameter("Invalid pagination token."))?)
        }
        None => None,
    };
    let pool = input.user_pool_id.clone();
    let records = ctx
        .store(move |s| s.list_import_jobs(&pool, after.as_ref().map(|p| (p.created_ms, p.job_id.as_str())), limit + 1))
        .await?;
    let has_more = records.len() > limit;
    let page: Vec<ImportJobRecord> = records.into_iter().take(limit).collect();
    let pagination_token = match (has_more, page.last()) {
        (true, Some(last)) => {
            let position = JobPosition { created_ms: last.created_ms, job_id: last.job_id.clone() };
            Some(page_token(&serde_json::to_string(&position).map_err(ApiError::internal)?))
        }
        _ => None,
    };
    let jobs = page.iter().map(|r| decode_doc::<JobDoc>(&r.doc).map(|d| d.job)).collect::<ApiResult<_>>()?;
    Ok(ListUserImportJobsResponse { user_import_jobs: Some(jobs), pagination_token })
}

pub async fn start_user_import_job(
    ctx: Ctx,
    input: StartUserImportJobRequest,
) -> ApiResult<StartUserImportJobResponse> {
    let (p, j) = (input.user_pool_id.clone(), input.job_id.clone());
    load_job(&ctx, &input.user_pool_id, &input.job_id).await?;
    if ctx.store(move |s| s.get_import_csv(&p, &j)).await?.is_none() {
        return Err(ApiError::new(ErrorCode::PreconditionNotMetException, "The CSV file has not been uploaded."));
    }
    let now = ctx.now_ms();
    let doc = modify_job(&ctx, &input.user_pool_id, &input.job_id, |doc| {
        if status(doc) != UserImportJobStatusType::Created {
            return Err(ApiError::new(
                ErrorCode::PreconditionNotMetException,
                format!("Import job {} is {}; only a Created job can start.", input.job_id, status(doc)),
            ));
        }
        doc.job.status = Some(UserImportJobStatusType::InProgress);
        doc.job.start_date = Some(timestamp(now));
        Ok(())
    })
    .await?;
    let (state, pool_id, job_id) = (Arc::clone(&ctx.state), input.user_pool_id.clone(), input.job_id.clone());
    tokio::spawn(async move {
        if let Err(err) = run_job(state, &pool_id, &job_id).await {
            tracing::error!(job_id, error = %err.message, "import job failed");
        }
    });
    Ok(StartUserImportJobResponse { user_import_job: Some(doc.job) })
}

pub async fn stop_user_import_job(ctx: Ctx, input: StopUserImportJobRequest) -> ApiResult<StopUserImportJobResponse> {
    let now = ctx.now_ms();
    let doc = modify_job(&ctx, &input.user_pool_id, &input.job_id, |doc| {
        match status(doc) {
            UserImportJobStatusType::InProgress | UserImportJobStatusType::Pending => {
                doc.job.status = Some(UserImportJobStatusType::Stopping);
            }
            UserImportJobStatusType::Created => {
                doc.job.status = Some(UserImportJobStatusType::Stopped);
                doc.job.completion_date = Some(timestamp(now));
                doc.job.completion_message = Some("Import Job was stopped before it started.".into());
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::PreconditionNotMetException,
                    format!("Import job {} is {other} and cannot be stopped.", input.job_id),
                ))
            }
        }
        Ok(())
    })
    .await?;
    Ok(StopUserImportJobResponse { user_import_job: Some(doc.job) })
}

/// Accepts the CSV upload for a job (PUT to the pre-signed URL).
pub async fn upload(state: Arc<AppState>, job_id: &str, token: &str, body: Vec<u8>) -> Result<(), (u16, String)> {
    let ctx = system_ctx(&state);
    let lookup = job_id.to_owned();
    let record = ctx
        .store(move |s| s.get_import_job_by_id(&lookup))
        .await
        .map_err(|e| (500, e.message))?
        .ok_or_else(|| (404, "NoSuchUpload".to_owned()))?;
    let doc: JobDoc = decode_doc(&record.doc).map_err(|e| (500, e.message))?;
    if !cognate_crypto::ct::eq(doc.upload_token.as_bytes(), token.as_bytes()) {
        return Err((403, "SignatureDoesNotMatch".to_owned()));
    }
    if status(&doc) != UserImportJobStatusType::Created {
        return Err((409, "The import job has already started.".to_owned()));
    }
    let (p, j) = (record.pool_id.clone(), record.job_id.clone());
    ctx.store(move |s| s.put_import_csv(&p, &j, &body)).await.map_err(|e| (500, e.message))?;
    Ok(())
}

fn system_ctx(state: &Arc<AppState>) -> Ctx {
    Ctx {
        state: Arc::clone(state),
        request_id: String::from("import"),
        caller: Caller::Iam { access_key_id: String::from("cognate") },
        now: state.clock.now(),
    }
}

/// A CSV line split into fields (RFC 4180 quoting).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (other, _) => field.push(other),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    rows
}

/// Imports one row; returns why it failed, if it did.
async fn import_row(
    ctx: &Ctx,
    pool_id: &str,
    pool: &UserPoolType,
    header: &[String],
    row: &[String],
) -> Result<(), String> {
    if row.len() != header.len() {
        return Err(format!("expected {} columns, found {}", header.len(), row.len()));
    }
    let mut username = String::new();
    let mut changes = Vec::new();
    for (name, value) in header.iter().zip(row) {
        match name.as_str() {
            "cognito:username" => username = value.trim().to_owned(),
            "cognito:mfa_enabled" => {}
            _ if value.is_empty() => {}
            _ => changes.push(AttributeType { name: name.clone(), value: Some(Sensitive(value.clone())) }),
        }
    }
    if username.is_empty() {
        return Err("cognito:username is empty".into());
    }
    let checked = check_changes(pool, &changes, Writer::Creation).map_err(|e| e.message)?;
    let mut attributes: BTreeMap<String, String> = checked.into_iter().collect();
    for verified in ["email_verified", "phone_number_verified"] {
        if let Some(v) = attributes.get(verified) {
            if v != "true" && v != "false" {
                return Err(format!("{verified} must be true or false"));
            }
        }
    }
    let sub = cognate_crypto::ids::uuid_v4();
    attributes.insert("sub".into(), sub.clone());
    crate::users::attributes::check_required(pool, &attributes).map_err(|e| e.message)?;
    let new = NewUser {
        pool_id: pool_id.to_owned(),
        username,
        sub,
        status: UserStatusType::ResetRequired,
        attributes,
        sealed_password: String::new(),
        doc: UserDoc::default(),
    };
    let mut user = User::create(pool, new, ctx.now_ms());
    // Imported users have no password until they reset it.
    user.record.password = None;
    user.prepare_write(ctx.now_ms()).map_err(|e| e.message)?;
    let (record, index) = (user.record.clone(), user.index(pool));
    match ctx.store(move |s| Ok(s.insert_user(&record, &index))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(StoreError::AlreadyExists)) => Err("a user with this username already exists".into()),
        Ok(Err(StoreError::AliasTaken(kind))) => Err(format!("another user already has this {kind}")),
        Ok(Err(other)) => Err(other.to_string()),
        Err(e) => Err(e.message),
    }
}

async fn run_job(state: Arc<AppState>, pool_id: &str, job_id: &str) -> ApiResult<()> {
    let ctx = system_ctx(&state);
    let (p, j) = (pool_id.to_owned(), job_id.to_owned());
    let csv = ctx.store(move |s| s.get_import_csv(&p, &j)).await?.unwrap_or_default();
    let (_, pool_doc) = load_pool(&ctx, pool_id).await?;
    let pool = pool_doc.pool;
    let text = String::from_utf8_lossy(&csv).trim_start_matches('\u{feff}').to_owned();
    let mut rows = parse_csv(&text).into_iter();
    let header: Vec<String> = rows.next().unwrap_or_default().into_iter().map(|h| h.trim().to_owned()).collect();
    let allowed = super::user_pools::csv_header(&pool);
    let unknown: Vec<&String> = header.iter().filter(|h| !allowed.contains(h)).collect();
    if !header.iter().any(|h| h == "cognito:username") || !unknown.is_empty() {
        let message = format!(
            "The CSV header is invalid: it must come from GetCSVHeader and include cognito:username{}",
            if unknown.is_empty() { String::new() } else { format!(" (unknown columns: {unknown:?})") }
        );
        finish(&ctx, pool_id, job_id, UserImportJobStatusType::Failed, message, (0, 0), Vec::new()).await?;
        return Ok(());
    }
    let (mut imported, mut failed, mut failures) = (0i64, 0i64, Vec::new());
    let (pool, header) = (Arc::new(pool), Arc::new(header));
    let username_column = header.iter().position(|h| h == "cognito:username");
    let rows: Vec<Vec<String>> = rows.collect();
    let mut done = 0usize;
    for chunk in rows.chunks(PROGRESS_EVERY) {
        // Rows of a chunk are imported concurrently, so the store group-commits them; a
        // username repeated within the chunk waits for the first, so the later row is the
        // one reported as a duplicate.
        let mut seen = std::collections::HashSet::new();
        let (mut concurrent, mut sequential) = (Vec::new(), Vec::new());
        for (i, row) in chunk.iter().enumerate() {
            let name = username_column.and_then(|c| row.get(c)).map(|u| users::username_key(&pool, u.trim()));
            if name.is_none_or(|n| seen.insert(n)) {
                concurrent.push((done + i, row.clone()));
            } else {
                sequential.push((done + i, row.clone()));
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (n, row) in concurrent {
            let (ctx, pool_id, pool, header) =
                (ctx.clone(), pool_id.to_owned(), Arc::clone(&pool), Arc::clone(&header));
            tasks.spawn(async move { (n, import_row(&ctx, &pool_id, &pool, &header, &row).await) });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.map_err(ApiError::internal)?);
        }
        for (n, row) in sequential {
            outcomes.push((n, import_row(&ctx, pool_id, &pool, &header, &row).await));
        }
        outcomes.sort_by_key(|(n, _)| *n);
        for (n, outcome) in outcomes {
            match outcome {
                Ok(()) => imported += 1,
                Err(reason) => {
                    failed += 1;
                    failures.push(format!("row {}: {reason}", n + 2));
                }
            }
        }
        done += chunk.len();
        let doc = modify_job(&ctx, pool_id, job_id, |doc| {
            doc.job.imported_users = Some(imported);
            doc.job.failed_users = Some(failed);
            Ok(())
        })
        .await?;
        if status(&doc) == UserImportJobStatusType::Stopping {
            let message = format!("Import Job was stopped after {done} rows.");
            finish(&ctx, pool_id, job_id, UserImportJobStatusType::Stopped, message, (imported, failed), failures)
                .await?;
            return Ok(());
        }
    }
    let message = if failed == 0 {
        "Import Job Completed Successfully.".to_owned()
    } else {
        let listed: Vec<&String> = failures.iter().take(LISTED_FAILURES).collect();
        format!(
            "Import Job Completed with {failed} failed rows: {}",
            listed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
        )
    };
    let outcome =
        if imported == 0 && failed > 0 { UserImportJobStatusType::Failed } else { UserImportJobStatusType::Succeeded };
    finish(&ctx, pool_id, job_id, outcome, message, (imported, failed), failures).await
}

async fn finish(
    ctx: &Ctx,
    pool_id: &str,
    job_id: &str,
    outcome: UserImportJobStatusType,
    message: String,
    (imported, failed): (i64, i64),
    failures: Vec<String>,
) -> ApiResult<()> {
    let now = crate::state::millis(ctx.state.clock.now());
    modify_job(ctx, pool_id, job_id, |doc| {
        // A stop that arrived after the last progress check still ends the job as Stopped.
        let stopped = status(doc) == UserImportJobStatusType::Stopping;
        doc.job.status = Some(if stopped { UserImportJobStatusType::Stopped } else { outcome.clone() });
        doc.job.completion_date = Some(timestamp(now));
        doc.job.completion_message = Some(message.clone());
        doc.job.imported_users = Some(imported);
        doc.job.failed_users = Some(failed);
        doc.failures = failures.clone();
        Ok(())
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let rows = parse_csv("a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\n\n");
        assert_eq!(rows, vec![vec!["a", "b", "c"], vec!["x,1", "say \"hi\"", ""]]);
    }
}
