-- Sending the batches to Xero (contract section 6): what Xero accepted, what it refused, and every request.

create table xero_pushes (
    push_id varchar primary key,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    practices varchar[] not null,
    batches_sent integer not null,
    invoices_sent integer not null,
    invoices_rejected integer not null,
    invoices_not_active integer not null,
    requests integer not null,
    practices_skipped varchar[] not null
);
comment on table xero_pushes is 'One row per `trackline push` that committed: what it sent and what came back. A push that failed or was killed leaves no row (its journal is finished by the next push).';
comment on column xero_pushes.push_id is 'Identifier of the push (UTC start time and a random suffix).';
comment on column xero_pushes.started_at is 'When it started (UTC).';
comment on column xero_pushes.finished_at is 'When it committed (UTC).';
comment on column xero_pushes.practices is 'The practices it sent for.';
comment on column xero_pushes.batches_sent is 'Requests that carried invoices (a batch, less its invoices that could not be sent).';
comment on column xero_pushes.invoices_sent is 'Invoices Xero accepted (rows added to xero_sent_invoices).';
comment on column xero_pushes.invoices_rejected is 'Invoices Xero refused (XERO_REJECTED).';
comment on column xero_pushes.invoices_not_active is 'Invoices not sent because Xero does not have their tracking ACTIVE (XERO_OPTION_NOT_ACTIVE).';
comment on column xero_pushes.requests is 'HTTP requests made to Xero, retries included (xero_requests).';
comment on column xero_pushes.practices_skipped is 'Practices with batches to send and no connection, or stopped by Xero''s daily limit.';

create table xero_sent_invoices (
    practice_id varchar not null,
    invoice_id varchar not null,
    invoice_number varchar not null,
    batch_id varchar not null,
    xero_invoice_id varchar not null,
    line_item_ids varchar[] not null,
    digest varchar not null,
    sent_at timestamptz not null,
    push_id varchar not null
);
comment on table xero_sent_invoices is 'One row per invoice Xero accepted: its InvoiceID in Xero and each line''s LineItemID, with the digest of what was sent. An invoice is created in Xero once; a later change of its tracking is retracking''s.';
comment on column xero_sent_invoices.practice_id is 'The practice, whose Xero organisation holds the invoice.';
comment on column xero_sent_invoices.invoice_id is 'The invoice in the practice app.';
comment on column xero_sent_invoices.invoice_number is 'InvoiceNumber in Xero.';
comment on column xero_sent_invoices.batch_id is 'The batch that carried it.';
comment on column xero_sent_invoices.xero_invoice_id is 'Xero''s InvoiceID.';
comment on column xero_sent_invoices.line_item_ids is 'Xero''s LineItemID of each line, in line_no order.';
comment on column xero_sent_invoices.digest is 'MD5 of what was sent (export_ledger.digest).';
comment on column xero_sent_invoices.sent_at is 'When Xero''s answer came (UTC); for an invoice found in Xero after a push whose answer was lost, when it was found.';
comment on column xero_sent_invoices.push_id is 'The push that recorded it.';

create table xero_rejections (
    practice_id varchar not null,
    invoice_id varchar not null,
    digest varchar not null,
    batch_id varchar not null,
    messages varchar[] not null,
    rejected_at timestamptz not null,
    push_id varchar not null
);
comment on table xero_rejections is 'Every time Xero refused an invoice (HasErrors), with its messages. The invoice is sent again only when what would be sent for it changes (its digest).';
comment on column xero_rejections.practice_id is 'The practice.';
comment on column xero_rejections.invoice_id is 'The invoice refused.';
comment on column xero_rejections.digest is 'MD5 of what was sent and refused.';
comment on column xero_rejections.batch_id is 'The batch that carried it.';
comment on column xero_rejections.messages is 'Xero''s ValidationErrors messages, as Xero wrote them.';
comment on column xero_rejections.rejected_at is 'When (UTC).';
comment on column xero_rejections.push_id is 'The push.';

create table xero_requests (
    push_id varchar not null,
    practice_id varchar not null,
    batch_id varchar,
    purpose varchar not null,
    attempt integer not null,
    method varchar not null,
    path varchar not null,
    status integer,
    outcome varchar not null,
    idempotency_key varchar,
    min_limit_remaining integer,
    day_limit_remaining integer,
    app_min_limit_remaining integer,
    retry_after double,
    rate_limit_problem varchar,
    seconds double not null,
    requested_at timestamptz not null
);
comment on table xero_requests is 'One row per HTTP request a push made to Xero, each retry its own row: how Xero answered and what its rate-limit headers said. No token or secret is ever kept.';
comment on column xero_requests.push_id is 'The push.';
comment on column xero_requests.practice_id is 'The practice whose organisation was asked.';
comment on column xero_requests.batch_id is 'The batch sent (null for reads: tracking categories, look-ups).';
comment on column xero_requests.purpose is 'send (PUT /Invoices), categories (GET /TrackingCategories), lookup (GET /Invoices before resending content whose outcome was lost), token.';
comment on column xero_requests.attempt is '1 for the first attempt, 2 for its first retry, ...';
comment on column xero_requests.method is 'HTTP method.';
comment on column xero_requests.path is 'Path and query asked (never a token).';
comment on column xero_requests.status is 'HTTP status of the answer; null when none came (a broken connection, a timeout).';
comment on column xero_requests.outcome is 'ok, retried (then a further row follows), or given up.';
comment on column xero_requests.idempotency_key is 'The Idempotency-Key sent (the same for every attempt at the same content).';
comment on column xero_requests.min_limit_remaining is 'X-MinLimit-Remaining: calls left this minute for the organisation.';
comment on column xero_requests.day_limit_remaining is 'X-DayLimit-Remaining: calls left today for the organisation.';
comment on column xero_requests.app_min_limit_remaining is 'X-AppMinLimit-Remaining: calls left this minute for the app.';
comment on column xero_requests.retry_after is 'Retry-After of a 429, in seconds.';
comment on column xero_requests.rate_limit_problem is 'X-Rate-Limit-Problem of a 429: minute, day, concurrent, appminute.';
comment on column xero_requests.seconds is 'How long the request took, in seconds.';
comment on column xero_requests.requested_at is 'When it started (UTC).';
