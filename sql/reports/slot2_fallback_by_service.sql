-- slot2_fallback_by_service: for each service, how often slot 2 fell back to the client owner because the
-- template has no option of its own (R2), so the practice knows which templates to complete in its app.
create or replace view slot2_fallback_by_service as
with service_lines as (
    select
        lines.practice_id,
        lines.invoice_id,
        lines.service_template_id,
        lines.line_amount,
        lines.tracking2_source
    from line_tracking as lines
    where lines.invoice_state = 'ready' and lines.line_type = 'service'
),

invoice_headers as (
    select practice_id, invoice_id, currency
    from xero_invoices
),

-- Template names come from the latest source as given (a duplicated id shows its first name).
template_names as (
    select practice_id, service_template_id, min(name) as service_name
    from raw_service_templates
    group by all
),

counted as (
    select
        service_lines.practice_id,
        service_lines.service_template_id,
        headers.currency,
        count(*) as lines,
        sum(service_lines.line_amount) as net_amount,
        count(*) filter (where service_lines.tracking2_source = 'service') as slot2_service_lines,
        count(*) filter (where service_lines.tracking2_source = 'owner') as slot2_owner_lines,
        count(*) filter (where service_lines.tracking2_source is null) as slot2_none_lines,
        coalesce(sum(service_lines.line_amount) filter (where service_lines.tracking2_source = 'owner'), 0)
            as slot2_owner_amount,
        coalesce(sum(service_lines.line_amount) filter (where service_lines.tracking2_source is null), 0)
            as slot2_none_amount
    from service_lines
    join invoice_headers as headers using (practice_id, invoice_id)
    group by all
),

final as (
    select
        counted.practice_id,
        counted.service_template_id,
        template_names.service_name,
        counted.currency,
        counted.lines,
        counted.net_amount,
        counted.slot2_service_lines,
        counted.slot2_owner_lines,
        counted.slot2_none_lines,
        counted.slot2_owner_lines / counted.lines as fallback_share,
        counted.slot2_none_lines / counted.lines as none_share,
        counted.slot2_owner_amount,
        counted.slot2_none_amount
    from counted
    left join template_names using (practice_id, service_template_id)
)

select * from final;

comment on view slot2_fallback_by_service is 'Service lines of ready invoices per practice x service template x currency, by where slot 2 was resolved from (R2): the template''s own option, the client owner''s (the fallback), or none. A high fallback_share means the template has no tracking option in the practice app.';
comment on column slot2_fallback_by_service.practice_id is 'The practice (tenant).';
comment on column slot2_fallback_by_service.service_template_id is 'The service template the lines name.';
comment on column slot2_fallback_by_service.service_name is 'Its name, from the latest source.';
comment on column slot2_fallback_by_service.currency is 'Invoice currency (ISO 4217).';
comment on column slot2_fallback_by_service.lines is 'Service lines (source lines of line_type service on ready invoices).';
comment on column slot2_fallback_by_service.net_amount is 'Their net amount, exact to the cent (DECIMAL).';
comment on column slot2_fallback_by_service.slot2_service_lines is 'Lines whose slot 2 is the template''s own option.';
comment on column slot2_fallback_by_service.slot2_owner_lines is 'Lines whose slot 2 fell back to the client owner''s option.';
comment on column slot2_fallback_by_service.slot2_none_lines is 'Lines with no slot 2: no template option and no owner option.';
comment on column slot2_fallback_by_service.fallback_share is 'slot2_owner_lines / lines: the slot-2 fallback rate.';
comment on column slot2_fallback_by_service.none_share is 'slot2_none_lines / lines.';
comment on column slot2_fallback_by_service.slot2_owner_amount is 'Net amount of the fallback lines (DECIMAL).';
comment on column slot2_fallback_by_service.slot2_none_amount is 'Net amount of the lines with no slot 2 (DECIMAL).';
