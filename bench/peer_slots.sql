-- The bare slot peer: only R1-R4, the two slots of every line of every approved invoice, as ONE query over
-- typed Parquet files read where they lie ($<table> is the path of <table>.parquet: no loading step).
-- Slot 1 is the client's option; slot 2 is, on a service line, the service template's option, else the
-- client owner's (team member's); on an alignment_fee or adhoc line the owner's. Each option is named with
-- its category. Every lookup is keyed on practice_id as well as its id.
--
-- Nothing else: no parsing (the files are typed), no checks, no holds, no consolidation (R6) and no ledger
-- (R7). A repeated key is not looked for, so a duplicated option row gives its lines twice. It is the floor
-- a backfill is compared with: the joins any resolution of the slots must do, over the same files.
with
looked_up as (
    select
        l.practice_id, l.invoice_id, l.line_id, l.line_type,
        cl.tracking_option_id as client_option_id,
        st.tracking_option_id as template_option_id,
        tm.tracking_option_id as owner_option_id
    from read_parquet($invoice_lines) l
    join read_parquet($invoices) i
        on i.practice_id = l.practice_id and i.invoice_id = l.invoice_id
    left join read_parquet($clients) cl
        on cl.practice_id = i.practice_id and cl.client_id = i.client_id
    left join read_parquet($service_templates) st
        on st.practice_id = l.practice_id and st.service_template_id = l.service_template_id
    left join read_parquet($team_members) tm
        on tm.practice_id = cl.practice_id and tm.team_member_id = cl.owner_team_member_id
    where i.status = 'approved'
),
slotted as (
    select
        practice_id, invoice_id, line_id,
        client_option_id as slot1_id,
        case when client_option_id is not null then 'client' end as tracking1_source,
        case line_type
            when 'service' then coalesce(template_option_id, owner_option_id)
            when 'alignment_fee' then owner_option_id
            when 'adhoc' then owner_option_id
        end as slot2_id,
        case
            when line_type = 'service' and template_option_id is not null then 'service'
            when line_type in ('service', 'alignment_fee', 'adhoc') and owner_option_id is not null then 'owner'
        end as tracking2_source
    from looked_up
)
select
    s.practice_id, s.invoice_id, s.line_id,
    c1.name as tracking1_category, o1.name as tracking1_option, s.tracking1_source,
    c2.name as tracking2_category, o2.name as tracking2_option, s.tracking2_source
from slotted s
left join read_parquet($tracking_options) o1
    on o1.practice_id = s.practice_id and o1.tracking_option_id = s.slot1_id
left join read_parquet($tracking_categories) c1
    on c1.practice_id = o1.practice_id and c1.tracking_category_id = o1.tracking_category_id
left join read_parquet($tracking_options) o2
    on o2.practice_id = s.practice_id and o2.tracking_option_id = s.slot2_id
left join read_parquet($tracking_categories) c2
    on c2.practice_id = o2.practice_id and c2.tracking_category_id = o2.tracking_category_id
