-- xero_verify_status: per practice, how much of what is in Xero `trackline verify` has read back, when, and
-- what it found dropped.
create or replace view xero_verify_status as
with in_xero as (
    select practice_id, invoice_id, max(tracked_at) as tracked_at
    from xero_sent_lines
    group by all
),

last_read as (
    select practice_id, invoice_id, max(read_at) as read_at
    from xero_readback
    group by all
),

dropped as (
    select practice_id, count(distinct invoice_id) as invoices, count(*) as lines
    from exceptions
    where code = 'XERO_TRACKING_DROPPED'
    group by all
),

per_practice as (
    select
        x.practice_id,
        count(*) as invoices_in_xero,
        count(r.read_at) as invoices_checked,
        count(*) filter (where r.read_at is null or r.read_at < x.tracked_at) as invoices_to_check,
        max(r.read_at) as last_checked_at,
        min(r.read_at) as oldest_check_at
    from in_xero x
    left join last_read r using (practice_id, invoice_id)
    group by all
),

final as (
    select
        p.*,
        coalesce(d.invoices, 0) as invoices_dropped,
        coalesce(d.lines, 0) as lines_dropped
    from per_practice p
    left join dropped d using (practice_id)
)

select * from final;

comment on view xero_verify_status is 'Per practice: the invoices in Xero, how many `trackline verify` has read back and when, how many wait for a check (never read, or updated since), and the lines whose tracking Xero does not hold as sent (XERO_TRACKING_DROPPED).';
comment on column xero_verify_status.practice_id is 'The practice.';
comment on column xero_verify_status.invoices_in_xero is 'Invoices trackline created in Xero.';
comment on column xero_verify_status.invoices_checked is 'Of those, the ones verify has read back at least once.';
comment on column xero_verify_status.invoices_to_check is 'Never read back, or their tracking set (pushed or retracked) after the last read.';
comment on column xero_verify_status.last_checked_at is 'The latest read back (UTC).';
comment on column xero_verify_status.oldest_check_at is 'The oldest of the invoices'' last reads (UTC): every checked invoice was read at least this recently.';
comment on column xero_verify_status.invoices_dropped is 'Invoices with an open XERO_TRACKING_DROPPED.';
comment on column xero_verify_status.lines_dropped is 'Their lines whose tracking Xero does not hold as sent.';
