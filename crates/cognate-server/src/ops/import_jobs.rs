//! User import jobs: CreateUserImportJob hands out a pre-signed URL that Cognate serves
//! itself (a client PUTs the CSV to it exactly as it would to S3), StartUserImportJob imports
//! the rows in the background with counters moving as it goes, StopUserImportJob stops it.
//! Imported users are RESET_REQUIRED; each failed row's reason is kept in the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use cognate_store::{ImportJobRecord, StoreError, UserIndex, UserRecord};
use serde::{Deserialize, Serialize};

use cognate_core::context::{timestamp, Core, Ctx};
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;
use cognate_core::users::attributes::{check_changes, Writer};
use cognate_core::users::{NewUser, User, UserDoc};

/// Cognito's quota of import jobs per pool.
const MAX_JOBS: u64 = 1000;
/// Rows committed per transaction, together with the job's counters: the unit of progress,
/// so a job resumed on another node neither skips nor repeats a row.
const BATCH_ROWS: usize = 1000;
/// At most this many row failures are listed in CompletionMessage.
const LISTED_FAILURES: usize = 20;
/// At most this many row failures are kept with the job (each is also logged).
const KEPT_FAILURES: usize = 100;
/// Stalled jobs one node takes over per look.
const RESUMED_PER_LOOK: usize = 10;
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
    /// CSV data rows processed so far (imported or failed), committed with those users.
    #[serde(default)]
    rows_done: usize,
    /// The run importing the job (see [`new_run_id`]) while the job runs.
    #[serde(default)]
    runner: Option<String>,
    /// The pre-signed URL was used: it takes one upload (set before the CSV is stored).
    #[serde(default)]
    uploaded: bool,
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

/// Read-modify-write of a job and its lease with compare-and-set.
async fn modify_job<F>(ctx: &Ctx, pool_id: &str, job_id: &str, mut change: F) -> ApiResult<JobDoc>
where
    F: FnMut(&mut JobDoc, &mut Option<i64>) -> ApiResult<()>,
{
    let mut attempts = Attempts::new(ctx, "The import job");
    loop {
        attempts.begin()?;
        let (mut record, mut doc) = load_job(ctx, pool_id, job_id).await?;
        change(&mut doc, &mut record.lease_until_ms)?;
        record.version += 1;
        // A job runs for longer than one request: its changes carry the time they are made.
        record.modified_ms = cognate_core::context::millis(ctx.state.clock.now());
        record.doc = encode_doc(&doc)?;
        let answer = ctx.store(move |s| Ok(s.update_import_job(&record))).await?;
        if let Some(done) = written(answer, doc, || job_not_found(job_id))? {
            return Ok(done);
        }
    }
}

/// Names one run of a job on this node. Each start or takeover is a new run, so a run that
/// lost the job (its lease ran out during a slow batch and someone, maybe this node, took it
/// over) sees that it is no longer the runner and stops.
fn new_run_id(state: &Core) -> String {
    format!("{}-{}", state.node_id, hex::encode(cognate_crypto::ids::random_bytes::<4>()))
}

fn lease_ms(state: &Core) -> i64 {
    i64::try_from(state.settings.import_lease_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// How often a lease is renewed, and stalled jobs looked for: a third of the lease, so a
/// lease survives a missed renewal.
fn lease_check_period(state: &Core) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(lease_ms(state) / 3).unwrap_or(0).max(100))
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
        pre_signed_url: Some(format!("{}/_cognate/import/{job_id}?token={token}", ctx.settings().public_url)),
        creation_date: Some(timestamp(now)),
        status: Some(UserImportJobStatusType::Created),
        cloud_watch_logs_role_arn: Some(input.cloud_watch_logs_role_arn),
        imported_users: Some(0),
        skipped_users: Some(0),
        failed_users: Some(0),
        ..Default::default()
    };
    let doc = JobDoc {
        job: job.clone(),
        upload_token: token,
        failures: Vec::new(),
        rows_done: 0,
        runner: None,
        uploaded: false,
    };
    let record = ImportJobRecord {
        pool_id: input.user_pool_id.clone(),
        job_id,
        created_ms: now,
        modified_ms: now,
        version: 1,
        doc: encode_doc(&doc)?,
        lease_until_ms: None,
    };
    match ctx.store(move |s| Ok(s.insert_import_job(&record, MAX_JOBS))).await? {
        Ok(()) => Ok(CreateUserImportJobResponse { user_import_job: Some(job) }),
        Err(StoreError::LimitExceeded) => {
            Err(ApiError::limit_exceeded(format!("The user pool has reached its limit of {MAX_JOBS} import jobs.")))
        }
        Err(StoreError::NotFound(_)) => Err(pool_not_found(&input.user_pool_id)),
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
    let (now, run) = (ctx.now_ms(), new_run_id(&ctx.state));
    let lease_until = now.saturating_add(lease_ms(&ctx.state));
    let doc = modify_job(&ctx, &input.user_pool_id, &input.job_id, |doc, lease| {
        if status(doc) != UserImportJobStatusType::Created {
            return Err(ApiError::new(
                ErrorCode::PreconditionNotMetException,
                format!("Import job {} is {}; only a Created job can start.", input.job_id, status(doc)),
            ));
        }
        doc.job.status = Some(UserImportJobStatusType::InProgress);
        doc.job.start_date = Some(timestamp(now));
        doc.runner = Some(run.clone());
        *lease = Some(lease_until);
        Ok(())
    })
    .await?;
    spawn_run(Arc::clone(&ctx.state), input.user_pool_id.clone(), input.job_id.clone(), run);
    Ok(StartUserImportJobResponse { user_import_job: Some(doc.job) })
}

pub async fn stop_user_import_job(ctx: Ctx, input: StopUserImportJobRequest) -> ApiResult<StopUserImportJobResponse> {
    let now = ctx.now_ms();
    let doc = modify_job(&ctx, &input.user_pool_id, &input.job_id, |doc, _| {
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

/// How long a pre-signed URL works after CreateUserImportJob: Cognito's S3 URLs expire
/// after 15 minutes.
pub const UPLOAD_URL_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// Uploads read at once. Each may hold up to [`MAX_CSV_BYTES`] until it is stored, so this
/// bounds the memory uploads take. A process-wide static rather than a field of [`Core`]
/// because the memory it protects is the process's.
static UPLOAD_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// How long an upload waits for a slot before it is told to slow down (S3's 503 SlowDown).
const UPLOAD_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// An upload that sends nothing for this long is dropped (S3's RequestTimeout), so a
/// stalled client does not keep a slot.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(20);
/// Longest any one upload may take (100 MiB in 15 minutes is about 115 KB/s).
const UPLOAD_TOTAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Job ids and tokens longer than this cannot be ours (ids are `import-` and 10 letters,
/// tokens 48 hex digits): refused without a store lookup.
const MAX_URL_PART: usize = 128;

/// Why an upload was refused, as S3 would say it: the HTTP status, S3's error code and
/// message (the body is S3's XML error document).
#[derive(Debug)]
pub struct UploadRefusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl UploadRefusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        UploadRefusal { status, code, message: message.into() }
    }

    /// An unknown job, a wrong or missing token, a deleted pool: one answer for all, so the
    /// URL tells nothing about which jobs exist.
    fn access_denied() -> Self {
        Self::new(403, "AccessDenied", "Access Denied")
    }

    fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "import upload failed");
        Self::new(500, "InternalError", "We encountered an internal error. Please try again.")
    }

    /// S3's XML error document (the messages are fixed text, never client input).
    pub fn xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>\n",
            self.code, self.message
        )
    }
}

/// Accepts the CSV upload for a job (PUT to the pre-signed URL). The job id and token are
/// checked before a byte of the body is read (hyper sends `100 Continue` only once the body
/// is polled, so a refused `curl -T` never sends it); the body is then read within
/// [`MAX_CSV_BYTES`], by at most [`UPLOAD_SLOTS`] uploads at once. The URL works for
/// [`UPLOAD_URL_LIFETIME_MS`] and for one upload.
pub async fn upload(
    state: Arc<Core>,
    job_id: &str,
    token: &str,
    mut body: axum::body::Body,
) -> Result<(), UploadRefusal> {
    use axum::body::HttpBody;

    let ctx = system_ctx(&state);
    authorize_upload(&ctx, job_id, token).await?;
    let declared = body.size_hint().lower();
    if declared > MAX_CSV_BYTES as u64 {
        return Err(too_large());
    }
    let _slot = match tokio::time::timeout(UPLOAD_SLOT_WAIT, UPLOAD_SLOTS.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err(UploadRefusal::new(503, "SlowDown", "Please reduce your request rate.")),
    };
    // The declared length (Content-Length) is allocated once, not grown by doubling.
    let mut csv = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + UPLOAD_TOTAL;
    loop {
        let idle = UPLOAD_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let frame = tokio::time::timeout(idle, std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)));
        match frame.await {
            Err(_) => {
                return Err(UploadRefusal::new(
                    400,
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to within the timeout period.",
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(UploadRefusal::new(
                    400,
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                ))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if csv.len().saturating_add(data.len()) > MAX_CSV_BYTES {
                        return Err(too_large());
                    }
                    csv.extend_from_slice(&data);
                }
            }
        }
    }
    // The job may have changed while the body arrived: claim the URL's one use with
    // compare-and-set, then store the CSV.
    let record = claim_upload(&ctx, job_id, token, true).await?;
    let (p, j) = (record.pool_id.clone(), record.job_id.clone());
    if let Err(err) = ctx.store(move |s| s.put_import_csv(&p, &j, &csv)).await {
        // Give the use back, so the client can retry what the server failed to store.
        if claim_upload(&ctx, job_id, token, false).await.is_err() {
            tracing::warn!(job_id, "an import upload failed and its URL stays used");
        }
        return Err(UploadRefusal::internal(err.message));
    }
    Ok(())
}

fn too_large() -> UploadRefusal {
    UploadRefusal::new(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
}

/// The job the URL names, if `token` is its upload token; AccessDenied otherwise.
async fn upload_job(ctx: &Ctx, job_id: &str, token: &str) -> Result<(ImportJobRecord, JobDoc), UploadRefusal> {
    if job_id.len() > MAX_URL_PART || token.is_empty() || token.len() > MAX_URL_PART {
        return Err(UploadRefusal::access_denied());
    }
    let lookup = job_id.to_owned();
    let record = ctx
        .store(move |s| s.get_import_job_by_id(&lookup))
        .await
        .map_err(|e| UploadRefusal::internal(e.message))?
        .ok_or_else(UploadRefusal::access_denied)?;
    let doc: JobDoc = decode_doc(&record.doc).map_err(|e| UploadRefusal::internal(e.message))?;
    if !cognate_crypto::ct::eq(doc.upload_token.as_bytes(), token.as_bytes()) {
        return Err(UploadRefusal::access_denied());
    }
    Ok((record, doc))
}

/// Whether the URL can take an upload now; what the refusal says once the token is right
/// (telling its holder that the URL expired or was used reveals nothing new).
fn upload_refusal(ctx: &Ctx, record: &ImportJobRecord, doc: &JobDoc) -> Option<UploadRefusal> {
    if ctx.now_ms() >= record.created_ms.saturating_add(UPLOAD_URL_LIFETIME_MS) {
        return Some(UploadRefusal::new(403, "AccessDenied", "Request has expired"));
    }
    if doc.uploaded {
        return Some(UploadRefusal::new(403, "AccessDenied", "This pre-signed URL has already been used."));
    }
    match status(doc) {
        UserImportJobStatusType::Created => None,
        other => {
            Some(UploadRefusal::new(403, "AccessDenied", format!("The import job is {other} and takes no upload.")))
        }
    }
}

async fn authorize_upload(ctx: &Ctx, job_id: &str, token: &str) -> Result<(), UploadRefusal> {
    let (record, doc) = upload_job(ctx, job_id, token).await?;
    upload_refusal(ctx, &record, &doc).map_or(Ok(()), Err)
}

/// Marks the URL used (`used`), refused as [`upload_refusal`] says; or gives the use back.
async fn claim_upload(ctx: &Ctx, job_id: &str, token: &str, used: bool) -> Result<ImportJobRecord, UploadRefusal> {
    let (record, _) = upload_job(ctx, job_id, token).await?;
    let mut refused = None;
    let change = |doc: &mut JobDoc, _: &mut Option<i64>| {
        if used {
            refused = upload_refusal(ctx, &record, doc);
            if refused.is_some() {
                return Err(ApiError::new(ErrorCode::PreconditionNotMetException, "refused"));
            }
        }
        doc.uploaded = used;
        Ok(())
    };
    let outcome = modify_job(ctx, &record.pool_id, &record.job_id, change).await;
    match (outcome, refused) {
        (Ok(_), _) => Ok(record),
        (Err(_), Some(refusal)) => Err(refusal),
        // The job or its pool was deleted meanwhile.
        (Err(err), None) if err.code == cognate_core::error::Code::Modelled(ErrorCode::ResourceNotFoundException) => {
            Err(UploadRefusal::access_denied())
        }
        (Err(err), None) => Err(UploadRefusal::internal(err.message)),
    }
}

fn system_ctx(state: &Arc<Core>) -> Ctx {
    Ctx::system(state, "import")
}

/// The records of a CSV document (RFC 4180 quoting; CRLF or LF line ends; blank lines
/// skipped), read one at a time so that a large upload is never held as parsed rows.
/// `offset` is where the next record starts, so a job can carry on from there.
struct CsvRecords<'a> {
    text: &'a str,
    offset: usize,
}

impl<'a> CsvRecords<'a> {
    fn at(text: &'a str, offset: usize) -> Self {
        CsvRecords { text, offset }
    }

    fn read_record(&mut self) -> Option<Vec<String>> {
        let bytes = self.text.as_bytes();
        if self.offset >= bytes.len() {
            return None;
        }
        let (mut record, mut field, mut quoted) = (Vec::new(), Vec::<u8>::new(), false);
        // Quotes, commas and line ends are ASCII, so splitting the UTF-8 bytes there keeps
        // every field valid UTF-8.
        let text = |field: Vec<u8>| String::from_utf8(field).unwrap_or_default();
        while let Some(&b) = bytes.get(self.offset) {
            self.offset += 1;
            match (b, quoted) {
                (b'"', true) if bytes.get(self.offset) == Some(&b'"') => {
                    field.push(b'"');
                    self.offset += 1;
                }
                (b'"', true) => quoted = false,
                (b'"', false) if field.is_empty() => quoted = true,
                (b',', false) => record.push(text(std::mem::take(&mut field))),
                (b'\n', false) => {
                    record.push(text(field));
                    return Some(record);
                }
                (b'\r', false) => {}
                (other, _) => field.push(other),
            }
        }
        record.push(text(field));
        Some(record)
    }
}

impl Iterator for CsvRecords<'_> {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        loop {
            let record = self.read_record()?;
            if !(record.len() == 1 && record[0].trim().is_empty()) {
                return Some(record);
            }
        }
    }
}

/// Turns one CSV row into the user it describes, or says why it cannot be imported.
fn prepare_row(
    pool_id: &str,
    pool: &UserPoolType,
    header: &[String],
    row: &[String],
    now_ms: i64,
) -> Result<(UserRecord, UserIndex), String> {
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
    cognate_core::users::attributes::check_required(pool, &attributes).map_err(|e| e.message)?;
    let new = NewUser {
        pool_id: pool_id.to_owned(),
        username,
        sub,
        status: UserStatusType::ResetRequired,
        attributes,
        sealed_password: String::new(),
        doc: UserDoc::default(),
    };
    let mut user = User::create(pool, new, now_ms);
    // Imported users have no password until they reset it.
    user.record.password = None;
    user.prepare_write(now_ms).map_err(|e| e.message)?;
    let index = user.index(pool);
    Ok((user.record, index))
}

fn refusal_reason(err: &StoreError) -> String {
    match err {
        StoreError::AlreadyExists(_) => "a user with this username already exists".into(),
        StoreError::AliasTaken(kind) => format!("another user already has this {kind}"),
        StoreError::NotFound(_) => "the user pool no longer exists".into(),
        other => other.to_string(),
    }
}

/// One batch of rows on its way into the store: for each row, the position of its user in
/// the batch handed to the store, or why it was refused before that.
struct Batch {
    /// 1-based line number in the CSV of the batch's first row.
    first_line: usize,
    rows: Vec<Result<usize, String>>,
}

impl Batch {
    /// Rows imported, and each failed row's line and reason, once the store has answered.
    fn tally(&self, outcomes: &[Result<(), StoreError>]) -> (i64, Vec<(usize, String)>) {
        let (mut imported, mut failed) = (0, Vec::new());
        for (i, row) in self.rows.iter().enumerate() {
            let reason = match row {
                Ok(slot) => match outcomes.get(*slot) {
                    Some(Ok(())) => None,
                    Some(Err(err)) => Some(refusal_reason(err)),
                    None => Some("not processed".into()),
                },
                Err(reason) => Some(reason.clone()),
            };
            match reason {
                None => imported += 1,
                Some(reason) => failed.push((self.first_line + i, reason)),
            }
        }
        (imported, failed)
    }
}

/// Rows processed so far, and the byte offset in the CSV of the next one.
type RowPosition = (usize, usize);

/// A batch of rows turned into users, ready to be committed.
struct Prepared {
    batch: Batch,
    users: Vec<(UserRecord, UserIndex)>,
    /// Where the job stands once the batch is committed.
    next: RowPosition,
}

/// Reads up to BATCH_ROWS rows from `position` (rows done, byte offset) and prepares their
/// users. `None` when no rows are left.
fn prepare_batch(
    text: &str,
    position: RowPosition,
    (pool_id, pool, header): (&str, &UserPoolType, &[String]),
    now_ms: i64,
) -> Option<Prepared> {
    let mut reader = CsvRecords::at(text, position.1);
    let rows: Vec<Vec<String>> = reader.by_ref().take(BATCH_ROWS).collect();
    if rows.is_empty() {
        return None;
    }
    let mut users = Vec::with_capacity(rows.len());
    let outcomes = rows
        .iter()
        .map(|row| {
            prepare_row(pool_id, pool, header, row, now_ms).map(|user| {
                users.push(user);
                users.len() - 1
            })
        })
        .collect();
    let batch = Batch { first_line: position.0 + 2, rows: outcomes };
    Some(Prepared { batch, users, next: (position.0 + rows.len(), reader.offset) })
}

/// Commits a prepared batch with the job's progress in the same transaction.
/// `VersionConflict` when the job changed meanwhile (stopped, or taken over).
fn commit_batch(
    store: &dyn cognate_store::Store,
    (record, doc): (ImportJobRecord, JobDoc),
    prepared: Prepared,
    (now_ms, lease_until): (i64, i64),
) -> Result<(i64, i64), StoreError> {
    let Prepared { batch, users, next } = prepared;
    let progress_batch = Batch { first_line: batch.first_line, rows: batch.rows.clone() };
    let progress = move |outcomes: &[Result<(), StoreError>]| {
        let (imported, failed) = progress_batch.tally(outcomes);
        let mut doc = doc.clone();
        let job = &mut doc.job;
        job.imported_users = Some(job.imported_users.unwrap_or(0) + imported);
        job.failed_users = Some(job.failed_users.unwrap_or(0) + failed.len() as i64);
        let room = KEPT_FAILURES.saturating_sub(doc.failures.len());
        doc.failures.extend(failed.into_iter().take(room).map(|(line, reason)| format!("row {line}: {reason}")));
        doc.rows_done = next.0;
        // Encoding plain strings and numbers cannot fail; were it to, the old doc keeps the
        // job consistent (the rows would be retried and reported as duplicates).
        let text = serde_json::to_string(&doc).unwrap_or_else(|_| record.doc.clone());
        ImportJobRecord {
            version: record.version + 1,
            modified_ms: now_ms,
            doc: text,
            lease_until_ms: Some(lease_until),
            ..record.clone()
        }
    };
    let outcomes = store.import_user_batch(users, Box::new(progress))?;
    let (imported, failed) = batch.tally(&outcomes);
    for (line, reason) in &failed {
        tracing::info!(row = line, reason = %reason, "import row failed");
    }
    Ok((imported, failed.len() as i64))
}

/// Runs a job this node holds the lease of as run `run`, in the background, with a heartbeat
/// that keeps the lease while a batch takes long.
fn spawn_run(state: Arc<Core>, pool_id: String, job_id: String, run: String) {
    tokio::spawn(async move {
        let _running = state.metrics.import_running();
        let seen_version = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let heartbeat =
            tokio::spawn(heartbeat(Arc::clone(&state), pool_id.clone(), job_id.clone(), seen_version.clone()));
        if let Err(err) = run_job(&state, &pool_id, &job_id, &run, &seen_version).await {
            tracing::error!(job_id, error = %err.message, "import job failed");
        }
        heartbeat.abort();
    });
}

/// Every third of the lease, extends the lease of the job version the run last saw.
async fn heartbeat(state: Arc<Core>, pool_id: String, job_id: String, version: Arc<std::sync::atomic::AtomicI64>) {
    let period = lease_check_period(&state);
    loop {
        tokio::time::sleep(period).await;
        let ctx = system_ctx(&state);
        let until = ctx.now_ms().saturating_add(lease_ms(&state));
        let seen = version.load(std::sync::atomic::Ordering::SeqCst);
        let (p, j) = (pool_id.clone(), job_id.clone());
        // A miss (the run committed a batch meanwhile, which renewed the lease itself) is fine.
        if let Err(err) = ctx.store(move |s| s.renew_import_lease(&p, &j, seen, until)).await {
            tracing::warn!(job_id, error = %err.message, "renewing an import job's lease failed");
        }
    }
}

/// Imports the job's rows from where it stands, batch by batch, while run `run` holds it.
async fn run_job(
    state: &Arc<Core>,
    pool_id: &str,
    job_id: &str,
    run: &str,
    seen_version: &std::sync::atomic::AtomicI64,
) -> ApiResult<()> {
    let ctx = system_ctx(state);
    let (p, j) = (pool_id.to_owned(), job_id.to_owned());
    // Decoded off the async runtime: an upload may be 100 MB.
    let text = ctx
        .store(move |s| {
            let csv = s.get_import_csv(&p, &j)?.unwrap_or_default();
            Ok(String::from_utf8_lossy(&csv).trim_start_matches('\u{feff}').to_owned())
        })
        .await?;
    let (_, pool_doc) = load_pool(&ctx, pool_id).await?;
    let pool = Arc::new(pool_doc.pool);
    let mut records = CsvRecords::at(&text, 0);
    let header: Vec<String> = records.next().unwrap_or_default().into_iter().map(|h| h.trim().to_owned()).collect();
    let first_row = records.offset;
    let allowed = cognate_core::users::attributes::csv_header(&pool);
    let unknown: Vec<&String> = header.iter().filter(|h| !allowed.contains(h)).collect();
    if !header.iter().any(|h| h == "cognito:username") || !unknown.is_empty() {
        let message = format!(
            "The CSV header is invalid: it must come from GetCSVHeader and include cognito:username{}",
            if unknown.is_empty() { String::new() } else { format!(" (unknown columns: {unknown:?})") }
        );
        return finish(state, (pool_id, job_id, run), UserImportJobStatusType::Failed, Some(message)).await;
    }
    let (text, header) = (Arc::new(text), Arc::new(header));
    // Rows processed and the byte offset of the next row, as this node last committed.
    let mut position: RowPosition = (0, first_row);
    // The next batch, prepared (on another core) while the current one commits.
    let mut upcoming: Option<(RowPosition, tokio::task::JoinHandle<Option<Prepared>>)> = None;
    let prepare = |position: RowPosition, now: i64| {
        let (text, pool_id, pool, header) =
            (Arc::clone(&text), pool_id.to_owned(), Arc::clone(&pool), Arc::clone(&header));
        tokio::task::spawn_blocking(move || prepare_batch(&text, position, (&pool_id, &pool, &header), now))
    };
    loop {
        let ctx = system_ctx(state);
        let (record, doc) = load_job(&ctx, pool_id, job_id).await?;
        seen_version.store(record.version, std::sync::atomic::Ordering::SeqCst);
        if doc.runner.as_deref() != Some(run) {
            tracing::info!(job_id, "import job taken over by another run");
            return Ok(());
        }
        match status(&doc) {
            UserImportJobStatusType::InProgress => {}
            UserImportJobStatusType::Stopping => {
                return finish(state, (pool_id, job_id, run), UserImportJobStatusType::Stopped, None).await;
            }
            _ => return Ok(()),
        }
        if doc.rows_done != position.0 {
            // Resuming a job another node (or this one before a restart) began: finding its
            // row reads the CSV up to there, off the async runtime.
            let (text, rows_done) = (Arc::clone(&text), doc.rows_done);
            position = tokio::task::spawn_blocking(move || {
                let mut reader = CsvRecords::at(&text, first_row);
                let skipped = reader.by_ref().take(rows_done).count();
                (skipped, reader.offset)
            })
            .await
            .map_err(ApiError::internal)?;
        }
        let now = ctx.now_ms();
        let prepared = match upcoming.take() {
            Some((at, handle)) if at == position => handle.await,
            _ => prepare(position, now).await,
        }
        .map_err(ApiError::internal)?;
        let Some(prepared) = prepared else {
            return finish(state, (pool_id, job_id, run), UserImportJobStatusType::Succeeded, None).await;
        };
        let next = prepared.next;
        upcoming = Some((next, prepare(next, now)));
        let lease_until = now.saturating_add(lease_ms(state));
        let committed = ctx.store(move |s| Ok(commit_batch(s, (record, doc), prepared, (now, lease_until)))).await?;
        match committed {
            Ok((imported, failed)) => {
                state.metrics.import_rows(imported as u64, failed as u64);
                position = next;
            }
            // Stopped or taken over meanwhile: the next look at the job tells which.
            Err(StoreError::VersionConflict(_)) => {}
            Err(StoreError::NotFound(_)) => return Err(job_not_found(job_id)),
            Err(other) => return Err(ApiError::internal(other)),
        }
    }
}

/// Ends the job if run `run` still holds it: Stopped if a stop was asked for, else `outcome`
/// (Succeeded turns Failed when no row could be imported), with the completion message and
/// the lease released.
async fn finish(
    state: &Arc<Core>,
    (pool_id, job_id, run): (&str, &str, &str),
    outcome: UserImportJobStatusType,
    message: Option<String>,
) -> ApiResult<()> {
    let ctx = system_ctx(state);
    let now = ctx.now_ms();
    let finished = modify_job(&ctx, pool_id, job_id, |doc, lease| {
        if doc.runner.as_deref() != Some(run) {
            return Err(ApiError::new(ErrorCode::PreconditionNotMetException, "taken over by another run"));
        }
        let (imported, failed) = (doc.job.imported_users.unwrap_or(0), doc.job.failed_users.unwrap_or(0));
        let (final_status, text) = if status(doc) == UserImportJobStatusType::Stopping {
            (UserImportJobStatusType::Stopped, format!("Import Job was stopped after {} rows.", doc.rows_done))
        } else if let Some(message) = &message {
            (outcome.clone(), message.clone())
        } else if failed == 0 {
            (outcome.clone(), "Import Job Completed Successfully.".to_owned())
        } else {
            let listed: Vec<&str> = doc.failures.iter().take(LISTED_FAILURES).map(String::as_str).collect();
            let status = if imported == 0 { UserImportJobStatusType::Failed } else { outcome.clone() };
            (status, format!("Import Job Completed with {failed} failed rows: {}", listed.join("; ")))
        };
        doc.job.status = Some(final_status);
        doc.job.completion_date = Some(timestamp(now));
        doc.job.completion_message = Some(text);
        doc.runner = None;
        *lease = None;
        Ok(())
    })
    .await;
    match finished {
        Ok(doc) => state.metrics.import_finished(status(&doc).as_str()),
        Err(err) if err.code == cognate_core::error::Code::Modelled(ErrorCode::PreconditionNotMetException) => {
            tracing::info!(job_id, "import job taken over by another run before it finished");
        }
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Takes over jobs whose node stopped importing them (its lease ran out) and runs them here,
/// from the last committed batch.
pub async fn resume_stalled_jobs(state: &Arc<Core>) -> ApiResult<usize> {
    let ctx = system_ctx(state);
    let now = ctx.now_ms();
    let stalled = ctx.store(move |s| s.list_stalled_import_jobs(now, RESUMED_PER_LOOK)).await?;
    let mut resumed = 0;
    for record in stalled {
        let lease_until = now.saturating_add(lease_ms(state));
        let run = new_run_id(state);
        let claimed = modify_job(&ctx, &record.pool_id, &record.job_id, |doc, lease| {
            if lease.is_none_or(|until| until >= now) {
                return Err(ApiError::new(ErrorCode::ResourceNotFoundException, "no longer stalled"));
            }
            if matches!(status(doc), UserImportJobStatusType::InProgress | UserImportJobStatusType::Stopping) {
                doc.runner = Some(run.clone());
                *lease = Some(lease_until);
            } else {
                // Finished without releasing its lease: nothing to resume.
                *lease = None;
            }
            Ok(())
        })
        .await;
        match claimed {
            Ok(doc) if doc.runner.as_deref() == Some(run.as_str()) => {
                tracing::info!(job_id = record.job_id, rows_done = doc.rows_done, "resuming a stalled import job");
                spawn_run(Arc::clone(state), record.pool_id.clone(), record.job_id.clone(), run);
                resumed += 1;
            }
            Ok(_) => {}
            // Another node claimed it first, or it is gone.
            Err(err) => tracing::debug!(job_id = record.job_id, error = %err.message, "not resuming import job"),
        }
    }
    Ok(resumed)
}

/// Looks for stalled import jobs for as long as the server runs (a third of the lease apart).
pub fn spawn_stalled_job_watch(state: Arc<Core>) {
    let period = lease_check_period(&state);
    tokio::spawn(async move {
        loop {
            if let Err(err) = resume_stalled_jobs(&state).await {
                tracing::warn!(error = %err.message, "looking for stalled import jobs failed");
            }
            tokio::time::sleep(period).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let text = "a,b,c\r\n\n\"x,1\",\"say \"\"hi\"\"\",\n\n\"two\nlines\",ü,\"\"";
        let rows: Vec<Vec<String>> = CsvRecords::at(text, 0).collect();
        assert_eq!(rows, vec![vec!["a", "b", "c"], vec!["x,1", "say \"hi\"", ""], vec!["two\nlines", "ü", ""]]);
        // Carrying on from where a reader stopped gives the rest.
        let mut first = CsvRecords::at(text, 0);
        first.next();
        let rest: Vec<Vec<String>> = CsvRecords::at(text, first.offset).collect();
        assert_eq!(rest, rows[1..]);
    }
}
