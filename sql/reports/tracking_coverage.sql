-- tracking_coverage: how much of what Xero receives is tagged, and where slot 2 came from, per month.
create or replace view tracking_coverage as
with ready_lines as (
    select
        lines.practice_id,
        lines.invoice_id,
        lines.line_id,
        lines.line_amount,
        lines.tracking1_option,
        lines.tracking2_source
    from line_tracking as lines
    where lines.invoice_state = 'ready'
),

invoice_headers as (
    select practice_id, invoice_id, issue_date, currency
    from xero_invoices
),

-- Slot 2 as sent: a consolidated invoice (R6) and a drop_secondary line (R5) send none.
sent_slot2 as (
    select practice_id, invoice_id, line_id, tracking2_option
    from xero_line_items
    where tracking2_option is not null
),

classified as (
    select
        ready_lines.practice_id,
        date_trunc('month', headers.issue_date)::date as month,
        headers.currency,
        ready_lines.line_amount,
        abs(ready_lines.line_amount) as gross_amount,
        ready_lines.tracking1_option is not null as slot1_filled,
        case when sent_slot2.line_id is null then 'none' else ready_lines.tracking2_source end as slot2_source,
        ready_lines.tracking2_source is not null and sent_slot2.line_id is null as slot2_not_sent
    from ready_lines
    join invoice_headers as headers using (practice_id, invoice_id)
    left join sent_slot2 using (practice_id, invoice_id, line_id)
),

counted as (
    select
        practice_id,
        month,
        currency,
        count(*) as lines,
        sum(line_amount) as net_amount,
        sum(gross_amount) as gross_amount,
        count(*) filter (where slot1_filled) as slot1_filled_lines,
        coalesce(sum(line_amount) filter (where slot1_filled), 0) as slot1_filled_amount,
        coalesce(sum(gross_amount) filter (where slot1_filled), 0) as slot1_filled_gross,
        count(*) filter (where slot2_source = 'service') as slot2_service_lines,
        count(*) filter (where slot2_source = 'owner') as slot2_owner_lines,
        count(*) filter (where slot2_source = 'none') as slot2_none_lines,
        coalesce(sum(line_amount) filter (where slot2_source = 'service'), 0) as slot2_service_amount,
        coalesce(sum(line_amount) filter (where slot2_source = 'owner'), 0) as slot2_owner_amount,
        coalesce(sum(line_amount) filter (where slot2_source = 'none'), 0) as slot2_none_amount,
        coalesce(sum(gross_amount) filter (where slot2_source = 'service'), 0) as slot2_service_gross,
        coalesce(sum(gross_amount) filter (where slot2_source = 'owner'), 0) as slot2_owner_gross,
        coalesce(sum(gross_amount) filter (where slot2_source = 'none'), 0) as slot2_none_gross,
        count(*) filter (where slot2_not_sent) as slot2_not_sent_lines
    from classified
    group by all
),

final as (
    select
        practice_id,
        month,
        currency,
        lines,
        net_amount,
        gross_amount as absolute_amount,
        slot1_filled_lines / lines as slot1_filled_line_share,
        (lines - slot1_filled_lines) / lines as slot1_empty_line_share,
        slot1_filled_gross / nullif(gross_amount, 0) as slot1_filled_amount_share,
        (gross_amount - slot1_filled_gross) / nullif(gross_amount, 0) as slot1_empty_amount_share,
        slot2_service_lines / lines as slot2_service_line_share,
        slot2_owner_lines / lines as slot2_owner_line_share,
        slot2_none_lines / lines as slot2_none_line_share,
        slot2_service_gross / nullif(gross_amount, 0) as slot2_service_amount_share,
        slot2_owner_gross / nullif(gross_amount, 0) as slot2_owner_amount_share,
        slot2_none_gross / nullif(gross_amount, 0) as slot2_none_amount_share,
        slot1_filled_lines,
        slot1_filled_amount,
        slot2_service_lines,
        slot2_owner_lines,
        slot2_none_lines,
        slot2_service_amount,
        slot2_owner_amount,
        slot2_none_amount,
        slot2_not_sent_lines
    from counted
)

select * from final;

comment on view tracking_coverage is 'Per practice x month x currency: the share of the source lines of ready invoices, and of their amount, whose slot 1 is filled, and whose slot 2 as sent to Xero came from the service, the owner or nowhere. Shares lie in [0, 1]; slot1_filled + slot1_empty = 1 and slot2_service + slot2_owner + slot2_none = 1, for lines and for amount. Amount shares weigh each line by its absolute amount, so a credit line counts as money and a share never leaves [0, 1]; they are null when every line is zero.';
comment on column tracking_coverage.practice_id is 'The practice (tenant).';
comment on column tracking_coverage.month is 'First day of the month of the invoice''s issue date.';
comment on column tracking_coverage.currency is 'Invoice currency (ISO 4217).';
comment on column tracking_coverage.lines is 'Source lines of ready invoices (line_tracking rows; a consolidated invoice counts all its source lines).';
comment on column tracking_coverage.net_amount is 'Sum of their line amounts: equals the Xero line amounts of the same invoices, exact to the cent.';
comment on column tracking_coverage.absolute_amount is 'Sum of the absolute line amounts: the base of the amount shares (equals net_amount unless there are credit lines).';
comment on column tracking_coverage.slot1_filled_line_share is 'Share of lines whose slot 1 is filled.';
comment on column tracking_coverage.slot1_empty_line_share is 'Share of lines whose slot 1 is empty (client without a tracking option).';
comment on column tracking_coverage.slot1_filled_amount_share is 'Share of the absolute amount on lines whose slot 1 is filled (null when every line is zero).';
comment on column tracking_coverage.slot1_empty_amount_share is 'Share of the absolute amount on lines whose slot 1 is empty.';
comment on column tracking_coverage.slot2_service_line_share is 'Share of lines whose slot 2 sent is the service template''s option (R2).';
comment on column tracking_coverage.slot2_owner_line_share is 'Share of lines whose slot 2 sent is the client owner''s option (R2 fallback, R3, R4).';
comment on column tracking_coverage.slot2_none_line_share is 'Share of lines that send no slot 2: nothing resolved, or consolidated (R6), or dropped (R5 drop_secondary).';
comment on column tracking_coverage.slot2_service_amount_share is 'Share of the absolute amount whose slot 2 came from the service.';
comment on column tracking_coverage.slot2_owner_amount_share is 'Share of the absolute amount whose slot 2 came from the owner.';
comment on column tracking_coverage.slot2_none_amount_share is 'Share of the absolute amount with no slot 2 sent.';
comment on column tracking_coverage.slot1_filled_lines is 'Lines whose slot 1 is filled.';
comment on column tracking_coverage.slot1_filled_amount is 'Net amount of those lines (DECIMAL).';
comment on column tracking_coverage.slot2_service_lines is 'Lines whose slot 2 sent came from the service.';
comment on column tracking_coverage.slot2_owner_lines is 'Lines whose slot 2 sent came from the owner.';
comment on column tracking_coverage.slot2_none_lines is 'Lines with no slot 2 sent.';
comment on column tracking_coverage.slot2_service_amount is 'Net amount of the lines whose slot 2 came from the service (DECIMAL).';
comment on column tracking_coverage.slot2_owner_amount is 'Net amount of the lines whose slot 2 came from the owner (DECIMAL).';
comment on column tracking_coverage.slot2_none_amount is 'Net amount of the lines with no slot 2 sent (DECIMAL). The three slot-2 amounts add up to net_amount.';
comment on column tracking_coverage.slot2_not_sent_lines is 'Of the slot2_none lines, those whose slot 2 was resolved but not sent (consolidated invoice or drop_secondary).';
