-- The DuckDB peer: trackline's per-line result (CONTRACT.md R1–R9, same-category policy `hold`) as ONE
-- query over the raw source tables `raw_<table>` (every column text, as the files give it, plus `_row`,
-- the 1-based data row of the file).
--
-- One row per line of every approved invoice (and of every invoice whose status does not parse, which is
-- held), plus one row with a null line_id per such invoice that has no lines: the line's slots (category,
-- option, source), its amount, and its invoice's state (ready, held, not_xero) and hold codes (the error
-- codes that hold it, sorted, comma-separated). Written from the contract, not from trackline's code.
with
-- 1. Parse. Every table gets its typed values (a blank text field is null), `bad` (a value that does
--    not parse, or a required one missing: INVALID_VALUE) and `copies` (rows sharing its key:
--    DUPLICATE_KEY). Lookups use the first row of each key; problems are kept per key, to hold the
--    invoices that depend on them. A name Xero matches exactly may not start like a spreadsheet formula.
practices_checked as (
    select
        *,
        practice_id is null or name is null or ledger is null as bad,
        count(*) over (partition by practice_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(name) <> '' then name end as name,
            case when lower(trim(ledger)) in ('xero', 'quickbooks', 'sage', 'freeagent', 'none')
                then lower(trim(ledger)) end as ledger
        from raw_practices
    )
),
categories_checked as (
    select
        *,
        practice_id is null or tracking_category_id is null or name is null
            or regexp_matches(name, '^[=+\-@\t\r]') or status is null as bad,
        count(*) over (partition by practice_id, tracking_category_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(tracking_category_id) <> '' then tracking_category_id end as tracking_category_id,
            case when trim(name) <> '' then name end as name,
            case when upper(trim(status)) in ('ACTIVE', 'ARCHIVED', 'DELETED') then upper(trim(status)) end as status
        from raw_tracking_categories
    )
),
options_checked as (
    select
        *,
        practice_id is null or tracking_option_id is null or tracking_category_id is null or name is null
            or regexp_matches(name, '^[=+\-@\t\r]') or status is null as bad,
        count(*) over (partition by practice_id, tracking_option_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(tracking_option_id) <> '' then tracking_option_id end as tracking_option_id,
            case when trim(tracking_category_id) <> '' then tracking_category_id end as tracking_category_id,
            case when trim(name) <> '' then name end as name,
            case when upper(trim(status)) in ('ACTIVE', 'ARCHIVED', 'DELETED') then upper(trim(status)) end as status
        from raw_tracking_options
    )
),
team_checked as (
    select
        *,
        practice_id is null or team_member_id is null or name is null as bad,
        count(*) over (partition by practice_id, team_member_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(team_member_id) <> '' then team_member_id end as team_member_id,
            case when trim(name) <> '' then name end as name,
            case when trim(tracking_option_id) <> '' then tracking_option_id end as tracking_option_id
        from raw_team_members
    )
),
templates_checked as (
    select
        *,
        practice_id is null or service_template_id is null or name is null as bad,
        count(*) over (partition by practice_id, service_template_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(service_template_id) <> '' then service_template_id end as service_template_id,
            case when trim(name) <> '' then name end as name,
            case when trim(tracking_option_id) <> '' then tracking_option_id end as tracking_option_id,
            case when trim(account_code) <> '' then account_code end as account_code,
            case when trim(tax_type) <> '' then tax_type end as tax_type
        from raw_service_templates
    )
),
clients_checked as (
    select
        *,
        practice_id is null or client_id is null or name is null or regexp_matches(name, '^[=+\-@\t\r]')
            or (coalesce(trim(consolidate_raw), '') <> '' and consolidate_lines is null)
            -- a Xero ContactID is a GUID (8-4-4-4-12 hex digits); Xero refuses the request over any other
            or (xero_contact_id is not null and not regexp_full_match(
                xero_contact_id, '[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}')) as bad,
        count(*) over (partition by practice_id, client_id) as copies
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(client_id) <> '' then client_id end as client_id,
            case when trim(name) <> '' then name end as name,
            case when trim(xero_contact_id) <> '' then trim(xero_contact_id) end as xero_contact_id,
            case when trim(owner_team_member_id) <> '' then owner_team_member_id end as owner_team_member_id,
            case when trim(tracking_option_id) <> '' then tracking_option_id end as tracking_option_id,
            consolidate_lines as consolidate_raw,
            case
                when lower(trim(consolidate_lines)) in ('true', 't', 'yes', 'y', '1') then true
                when lower(trim(consolidate_lines)) in ('false', 'f', 'no', 'n', '0') then false
            end as consolidate_lines
        from raw_clients
    )
),
invoices_checked as (
    select
        *,
        practice_id is null or invoice_id is null or client_id is null or invoice_number is null
            or issue_date is null or due_date is null or currency is null or status is null or updated_at is null as bad
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(invoice_id) <> '' then invoice_id end as invoice_id,
            case when trim(client_id) <> '' then client_id end as client_id,
            case when trim(invoice_number) <> '' then invoice_number end as invoice_number,
            -- a date, or a date at midnight (2026-01-15 00:00:00)
            case when try_strptime(regexp_extract(trim(issue_date), '^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0*)?)?Z?)?$', 1), '%Y-%m-%d')::date
                between date '1900-01-01' and date '2099-12-31' then 1 end as issue_date,
            case when try_strptime(regexp_extract(trim(due_date), '^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0*)?)?Z?)?$', 1), '%Y-%m-%d')::date
                between date '1900-01-01' and date '2099-12-31' then 1 end as due_date,
            case when upper(trim(currency)) in (
                'AED', 'AFN', 'ALL', 'AMD', 'ANG', 'AOA', 'ARS', 'AUD', 'AWG', 'AZN', 'BAM', 'BBD', 'BDT', 'BGN', 'BHD',
                'BIF', 'BMD', 'BND', 'BOB', 'BRL', 'BSD', 'BTN', 'BWP', 'BYN', 'BYR', 'BZD', 'CAD', 'CDF', 'CHF', 'CLF',
                'CLP', 'CNY', 'COP', 'CRC', 'CUC', 'CUP', 'CVE', 'CZK', 'DJF', 'DKK', 'DOP', 'DZD', 'EEK', 'EGP', 'ERN',
                'ETB', 'EUR', 'FJD', 'FKP', 'GBP', 'GEL', 'GHS', 'GIP', 'GMD', 'GNF', 'GTQ', 'GYD', 'HKD', 'HNL', 'HRK',
                'HTG', 'HUF', 'IDR', 'ILS', 'INR', 'IQD', 'IRR', 'ISK', 'JMD', 'JOD', 'JPY', 'KES', 'KGS', 'KHR', 'KMF',
                'KPW', 'KRW', 'KWD', 'KYD', 'KZT', 'LAK', 'LBP', 'LKR', 'LRD', 'LSL', 'LTL', 'LVL', 'LYD', 'MAD', 'MDL',
                'MGA', 'MKD', 'MMK', 'MNT', 'MOP', 'MRO', 'MRU', 'MUR', 'MVR', 'MWK', 'MXN', 'MXV', 'MYR', 'MZN', 'NAD',
                'NGN', 'NIO', 'NOK', 'NPR', 'NZD', 'OMR', 'PAB', 'PEN', 'PGK', 'PHP', 'PKR', 'PLN', 'PYG', 'QAR', 'RON',
                'RSD', 'RUB', 'RWF', 'SAR', 'SBD', 'SCR', 'SDG', 'SEK', 'SGD', 'SHP', 'SKK', 'SLE', 'SLL', 'SOS', 'SRD',
                'STD', 'STN', 'SVC', 'SYP', 'SZL', 'THB', 'TJS', 'TMT', 'TND', 'TOP', 'TRY', 'TTD', 'TWD', 'TZS', 'UAH',
                'UGX', 'USD', 'UYU', 'UZS', 'VEF', 'VES', 'VND', 'VUV', 'WST', 'XAF', 'XCD', 'XOF', 'XPF', 'YER', 'ZAR',
                'ZMK', 'ZMW', 'ZWD'
            ) then upper(trim(currency)) end as currency,
            case when lower(trim(status)) in ('draft', 'approved', 'void') then lower(trim(status)) end as status,
            case when try_cast(trim(updated_at) as timestamptz)::date between date '1900-01-01' and date '2099-12-31'
                then 1 end as updated_at
        from raw_invoices
    )
),
lines_checked as (
    select
        *,
        practice_id is null or invoice_id is null or line_id is null or position is null or line_type is null
            or description is null or quantity is null or unit_amount is null
            -- a line amount Xero could not take (and a total that could overflow)
            or coalesce(abs(quantity::decimal(38, 4) * unit_amount) >= 1000000000000, false) as bad
    from (
        select
            _row,
            case when trim(practice_id) <> '' then practice_id end as practice_id,
            case when trim(invoice_id) <> '' then invoice_id end as invoice_id,
            case when trim(line_id) <> '' then line_id end as line_id,
            case when trim(service_template_id) <> '' then service_template_id end as service_template_id,
            case when trim(description) <> '' then description end as description,
            case when trim(account_code) <> '' then account_code end as account_code,
            case when trim(tax_type) <> '' then tax_type end as tax_type,
            -- a whole number of at most 9 digits, 3.0 allowed
            case when regexp_full_match(trim(position), '[+-]?[0-9]{1,9}(\.0*)?')
                then cast(regexp_replace(trim(position), '\.0*$', '') as integer) end as position,
            case when lower(trim(line_type)) in ('service', 'alignment_fee', 'adhoc') then lower(trim(line_type)) end as line_type,
            case when regexp_full_match(trim(quantity), '[+-]?[0-9]{1,14}(\.[0-9]{0,4})?')
                then try_cast(trim(quantity) as decimal(18, 4)) end as quantity,
            case when regexp_full_match(trim(unit_amount), '[+-]?[0-9]{1,14}(\.[0-9]{0,4})?')
                then try_cast(trim(unit_amount) as decimal(18, 4)) end as unit_amount
        from raw_invoice_lines
    )
),
-- first row of each key (rows missing a key part identify nothing and are left out)
practices as (
    select * from practices_checked where practice_id is not null
    qualify row_number() over (partition by practice_id order by _row) = 1
),
categories as (
    select * from categories_checked where practice_id is not null and tracking_category_id is not null
    qualify row_number() over (partition by practice_id, tracking_category_id order by _row) = 1
),
options as (
    select * from options_checked where practice_id is not null and tracking_option_id is not null
    qualify row_number() over (partition by practice_id, tracking_option_id order by _row) = 1
),
team as (
    select * from team_checked where practice_id is not null and team_member_id is not null
    qualify row_number() over (partition by practice_id, team_member_id order by _row) = 1
),
templates as (
    select * from templates_checked where practice_id is not null and service_template_id is not null
    qualify row_number() over (partition by practice_id, service_template_id order by _row) = 1
),
clients as (
    select * from clients_checked where practice_id is not null and client_id is not null
    qualify row_number() over (partition by practice_id, client_id order by _row) = 1
),
-- the big tables: keys counted by aggregation rather than windows
invoice_keys as (
    select
        practice_id, invoice_id, count(*) as copies, min(_row) as first_row,
        -- which copy of a repeated invoice is the real one is unknown: if any would be exported, the kept
        -- one is, with its status unknown (held by its DUPLICATE_KEY)
        bool_or(status = 'approved' or status is null) as exportable
    from invoices_checked where practice_id is not null and invoice_id is not null
    group by practice_id, invoice_id
),
invoices as (
    select i.* replace (case when k.copies > 1 and k.exportable then null else i.status end as status)
    from invoices_checked i
    join invoice_keys k on k.practice_id = i.practice_id and k.invoice_id = i.invoice_id and k.first_row = i._row
),
line_keys as (
    select practice_id, invoice_id, line_id, count(*) as copies, min(_row) as first_row
    from lines_checked where practice_id is not null and invoice_id is not null and line_id is not null
    group by practice_id, invoice_id, line_id
),
lines as (
    select l.*
    from lines_checked l
    join line_keys k
        on k.practice_id = l.practice_id and k.invoice_id = l.invoice_id and k.line_id = l.line_id and k.first_row = l._row
),
-- problems per key: a row that does not parse, or a key on more than one row
practice_problems as (
    select practice_id, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from practices_checked where practice_id is not null group by all having bool_or(bad) or bool_or(copies > 1)
),
category_problems as (
    select practice_id, tracking_category_id as key, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from categories_checked where practice_id is not null and tracking_category_id is not null
    group by all having bool_or(bad) or bool_or(copies > 1)
),
option_problems as (
    select practice_id, tracking_option_id as key, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from options_checked where practice_id is not null and tracking_option_id is not null
    group by all having bool_or(bad) or bool_or(copies > 1)
),
team_problems as (
    select practice_id, team_member_id as key, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from team_checked where practice_id is not null and team_member_id is not null
    group by all having bool_or(bad) or bool_or(copies > 1)
),
template_problems as (
    select practice_id, service_template_id as key, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from templates_checked where practice_id is not null and service_template_id is not null
    group by all having bool_or(bad) or bool_or(copies > 1)
),
client_problems as (
    select practice_id, client_id as key, bool_or(bad) as invalid, bool_or(copies > 1) as duplicate
    from clients_checked where practice_id is not null and client_id is not null
    group by all having bool_or(bad) or bool_or(copies > 1)
),
invoice_problems as (
    select practice_id, invoice_id, bool_or(invalid) as invalid, bool_or(duplicate) as duplicate
    from (
        select practice_id, invoice_id, true as invalid, false as duplicate
        from invoices_checked where bad and practice_id is not null and invoice_id is not null
        union all
        select practice_id, invoice_id, false, true from invoice_keys where copies > 1
    )
    group by practice_id, invoice_id
),
-- a line's problem holds its invoice, whether or not the line itself has a line_id
line_problems as (
    select practice_id, invoice_id, bool_or(invalid) as invalid, bool_or(duplicate) as duplicate
    from (
        select practice_id, invoice_id, true as invalid, false as duplicate
        from lines_checked where bad and practice_id is not null and invoice_id is not null
        union all
        select practice_id, invoice_id, false, true from line_keys where copies > 1
    )
    group by practice_id, invoice_id
),
-- 2. Resolve. Invoices to export: approved, or whose status does not parse (held by its INVALID_VALUE).
candidates as (
    select practice_id, invoice_id, client_id, invoice_number
    from invoices where status = 'approved' or status is null
),
option_names as (
    select
        o.practice_id, o.tracking_option_id, o.tracking_category_id, o.name as option_name, o.status as option_status,
        c.name as category_name, c.status as category_status
    from options o
    left join categories c on c.practice_id = o.practice_id and c.tracking_category_id = o.tracking_category_id
),
looked_up as (
    select
        l.practice_id, l.invoice_id, l.line_id, l.position, l.line_type, l.service_template_id, l.description,
        l.quantity, l.unit_amount,
        c.client_id, c.invoice_number,
        coalesce(p.ledger = 'xero', false) as is_xero,
        cl.client_id is not null as client_found, cl.name as client_name, cl.xero_contact_id,
        cl.owner_team_member_id, cl.tracking_option_id as client_option_id,
        coalesce(p.ledger = 'xero', false) and coalesce(cl.consolidate_lines, false) as consolidated,
        tm.team_member_id is not null as owner_found, tm.tracking_option_id as owner_option_id,
        st.service_template_id is not null as template_found, st.tracking_option_id as template_option_id,
        coalesce(l.account_code, st.account_code) as account_code,
        coalesce(l.tax_type, st.tax_type) as tax_type
    from lines l
    join candidates c on c.practice_id = l.practice_id and c.invoice_id = l.invoice_id
    left join practices p on p.practice_id = l.practice_id
    left join clients cl on cl.practice_id = l.practice_id and cl.client_id = c.client_id
    left join team tm on tm.practice_id = l.practice_id and tm.team_member_id = cl.owner_team_member_id
    left join templates st on st.practice_id = l.practice_id and st.service_template_id = l.service_template_id
),
-- R6: a consolidated invoice sends only its first line (lowest position, then line_id)
first_lines as (
    select
        practice_id, invoice_id,
        arg_min(line_id, (position is null, coalesce(position, 0), line_id)) as first_line_id
    from looked_up where consolidated
    group by practice_id, invoice_id
),
-- R1 slot 1: the client's option; R2-R4 slot 2: service line -> template's option, else the owner's;
-- alignment fee and ad hoc -> the owner's. R7: no slots outside Xero.
slotted as (
    select
        u.*,
        not u.consolidated or u.line_id = f.first_line_id as sends_line,
        case when is_xero then client_option_id end as slot1_id,
        case when is_xero and client_option_id is not null then 'client' end as tracking1_source,
        case
            when not is_xero or line_type is null then null
            when line_type = 'service' and template_option_id is not null then 'service'
            when owner_option_id is not null then 'owner'
        end as tracking2_source,
        line_type is not null and not (line_type = 'service' and template_option_id is not null) as from_owner,
        template_found or (service_template_id is null and coalesce(line_type <> 'service', true)) as lookable
    from looked_up u
    left join first_lines f on f.practice_id = u.practice_id and f.invoice_id = u.invoice_id
),
named as (
    select
        s.*,
        n1.tracking_option_id is not null as option1_found, n1.tracking_category_id as category1_id,
        n1.category_name as tracking1_category, n1.option_name as tracking1_option,
        n1.option_status as option1_status, n1.category_status as category1_status,
        n2.tracking_option_id is not null as option2_found, n2.tracking_category_id as category2_id,
        n2.category_name as tracking2_category, n2.option_name as tracking2_option,
        n2.option_status as option2_status, n2.category_status as category2_status
    from (
        select
            *,
            case tracking2_source when 'service' then template_option_id when 'owner' then owner_option_id end as slot2_id
        from slotted
    ) s
    left join option_names n1 on n1.practice_id = s.practice_id and n1.tracking_option_id = s.slot1_id
    left join option_names n2 on n2.practice_id = s.practice_id and n2.tracking_option_id = s.slot2_id
),
sent as (
    select
        *,
        is_xero and sends_line and slot1_id is not null as sends1,
        is_xero and not consolidated and slot2_id is not null as sends2
    from named
),
-- 3. Check each line (R5, R8, references, Xero's limits on what is sent, problems of what it depends on).
line_flags as (
    select
        s.practice_id, s.invoice_id, s.line_id,
        s.tracking1_category, s.tracking1_option, s.tracking1_source,
        s.tracking2_category, s.tracking2_option, s.tracking2_source,
        try_cast(round(s.quantity::decimal(38, 4) * s.unit_amount, 2) as decimal(18, 2)) as line_amount,
        s.consolidated, s.tax_type,
        coalesce(s.category1_id = s.category2_id, false) and not s.consolidated as same_category,
        (s.sends1 and (not s.option1_found or s.tracking1_category is null))
            or (s.sends2 and (not s.option2_found or s.tracking2_category is null)) as unknown_option,
        (s.sends1 and s.option1_found and s.tracking1_category is not null
            and (coalesce(s.option1_status <> 'ACTIVE', false) or coalesce(s.category1_status <> 'ACTIVE', false)))
            or (s.sends2 and s.option2_found and s.tracking2_category is not null
            and (coalesce(s.option2_status <> 'ACTIVE', false) or coalesce(s.category2_status <> 'ACTIVE', false)))
            as archived_option,
        (s.line_type = 'service' and s.service_template_id is null)
            or (s.service_template_id is not null and not s.template_found) as unknown_service,
        not s.consolidated and s.from_owner
            and s.owner_team_member_id is not null and not s.owner_found and s.client_found as unknown_team_member,
        -- an unknown or missing template is UNKNOWN_SERVICE alone: what it would give is not known
        s.sends_line and s.lookable and s.account_code is null as missing_account_code,
        (s.sends_line or s.consolidated) and s.lookable and s.tax_type is null as missing_tax_type,
        s.is_xero and s.sends_line and (
            coalesce(length(s.invoice_number) > 255, false)
            or coalesce(s.xero_contact_id is null and length(s.client_name) > 255, false)
            or coalesce(length(s.description) > 4000, false)
            or (s.sends1 and coalesce(length(s.tracking1_category) > 100 or length(s.tracking1_option) > 100, false))
            or (s.sends2 and coalesce(length(s.tracking2_category) > 100 or length(s.tracking2_option) > 100, false))
        )
            or coalesce(tp.invalid, false)
            or coalesce(s.is_xero and not s.consolidated and s.from_owner and mp.invalid, false)
            or coalesce(s.sends1 and op1.invalid, false) or coalesce(s.sends2 and op2.invalid, false)
            or coalesce(s.sends1 and cp1.invalid, false) or coalesce(s.sends2 and cp2.invalid, false) as invalid_value,
        coalesce(tp.duplicate, false)
            or coalesce(s.is_xero and not s.consolidated and s.from_owner and mp.duplicate, false)
            or coalesce(s.sends1 and op1.duplicate, false) or coalesce(s.sends2 and op2.duplicate, false)
            or coalesce(s.sends1 and cp1.duplicate, false) or coalesce(s.sends2 and cp2.duplicate, false) as duplicate_key
    from sent s
    left join template_problems tp on tp.practice_id = s.practice_id and tp.key = s.service_template_id
    left join team_problems mp on mp.practice_id = s.practice_id and mp.key = s.owner_team_member_id
    left join option_problems op1 on op1.practice_id = s.practice_id and op1.key = s.slot1_id
    left join option_problems op2 on op2.practice_id = s.practice_id and op2.key = s.slot2_id
    left join category_problems cp1 on cp1.practice_id = s.practice_id and cp1.key = s.category1_id
    left join category_problems cp2 on cp2.practice_id = s.practice_id and cp2.key = s.category2_id
),
invoice_flags as (
    select
        practice_id, invoice_id,
        count(*) as line_count,
        coalesce(bool_or(same_category), false) as same_category,
        coalesce(bool_or(unknown_option), false) as unknown_option,
        coalesce(bool_or(archived_option), false) as archived_option,
        coalesce(bool_or(unknown_service), false) as unknown_service,
        coalesce(bool_or(unknown_team_member), false) as unknown_team_member,
        coalesce(bool_or(missing_account_code), false) as missing_account_code,
        coalesce(bool_or(missing_tax_type), false) as missing_tax_type,
        coalesce(bool_or(invalid_value), false) as invalid_value,
        coalesce(bool_or(duplicate_key), false) as duplicate_key,
        -- R6: lines with different effective tax types cannot be consolidated
        coalesce(min(tax_type) filter (where consolidated) <> max(tax_type) filter (where consolidated), false)
            as tax_mismatch,
        -- one consolidated amount too large for its one line's unit amount, decimal(18, 4)
        coalesce(bool_and(consolidated) and count(line_amount) = count(*)
            and abs(sum(line_amount::decimal(38, 2))) >= 100000000000000, false) as total_overflow
    from line_flags
    group by practice_id, invoice_id
),
-- 4. Hold (R9: any error on any line holds the whole invoice) or not; R7: other ledgers are not_xero.
states as (
    select
        c.practice_id, c.invoice_id,
        p.ledger is not null and p.ledger <> 'xero' as not_xero,
        concat_ws(
            ',',
            case when f.archived_option then 'ARCHIVED_OPTION' end,
            case when f.tax_mismatch then 'CONSOLIDATION_TAX_MISMATCH' end,
            case when coalesce(ip.duplicate or lp.duplicate or pp.duplicate or clp.duplicate or f.duplicate_key, false)
                then 'DUPLICATE_KEY' end,
            case when coalesce(p.ledger = 'xero', false) and coalesce(f.line_count, 0) = 0 then 'EMPTY_INVOICE' end,
            case when p.practice_id is null
                or coalesce(ip.invalid or lp.invalid or pp.invalid or clp.invalid or f.invalid_value or f.total_overflow, false)
                then 'INVALID_VALUE' end,
            case when f.missing_account_code then 'MISSING_ACCOUNT_CODE' end,
            case when f.missing_tax_type then 'MISSING_TAX_TYPE' end,
            case when f.same_category then 'SAME_CATEGORY' end,
            case when coalesce(p.ledger = 'xero', false) and cl.client_id is null and c.client_id is not null
                then 'UNKNOWN_CLIENT' end,
            case when f.unknown_option then 'UNKNOWN_OPTION' end,
            case when f.unknown_service then 'UNKNOWN_SERVICE' end,
            case when f.unknown_team_member then 'UNKNOWN_TEAM_MEMBER' end
        ) as codes
    from candidates c
    left join practices p on p.practice_id = c.practice_id
    left join clients cl on cl.practice_id = c.practice_id and cl.client_id = c.client_id
    left join invoice_flags f on f.practice_id = c.practice_id and f.invoice_id = c.invoice_id
    left join invoice_problems ip on ip.practice_id = c.practice_id and ip.invoice_id = c.invoice_id
    left join line_problems lp on lp.practice_id = c.practice_id and lp.invoice_id = c.invoice_id
    left join practice_problems pp on pp.practice_id = c.practice_id
    left join client_problems clp on clp.practice_id = c.practice_id and clp.key = c.client_id
)
select
    s.practice_id, s.invoice_id, l.line_id,
    l.tracking1_category, l.tracking1_option, l.tracking1_source,
    l.tracking2_category, l.tracking2_option, l.tracking2_source,
    l.line_amount,
    case when s.not_xero then 'not_xero' when s.codes <> '' then 'held' else 'ready' end as invoice_state,
    case when s.not_xero then '' else s.codes end as hold_codes
from states s
left join line_flags l on l.practice_id = s.practice_id and l.invoice_id = s.invoice_id
