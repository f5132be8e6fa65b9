-- retrack_plan: every line of an invoice already in Xero whose tracking resolved now differs from the tracking
-- Xero holds (as trackline sent or last retracked it), with why it moved; `trackline retrack --apply` updates
-- them. Invoices whose amounts or lines changed in the source are not here (SENT_INVOICE_CHANGED).
create or replace view retrack_plan as
with changed_in_source as (
    select distinct practice_id, invoice_id from exceptions where code = 'SENT_INVOICE_CHANGED'
),

now_lines as (
    select x.practice_id, x.invoice_id, x.invoice_number, x.line_no, x.line_id,
           x.tracking1_name, x.tracking1_option, x.tracking2_name, x.tracking2_option
    from xero_line_items x
    join invoice_tracking t using (practice_id, invoice_id)
    where t.invoice_state = 'ready'
),

pairs as (
    select
        s.practice_id, s.invoice_id, n.invoice_number, s.xero_invoice_id, s.line_no, s.line_item_id,
        s.line_amount, n.line_id,
        s.tracking1_name as xero_tracking1_name, s.tracking1_option as xero_tracking1_option,
        s.tracking2_name as xero_tracking2_name, s.tracking2_option as xero_tracking2_option,
        n.tracking1_name, n.tracking1_option, n.tracking2_name, n.tracking2_option,
        (s.tracking1_name is distinct from n.tracking1_name
            or s.tracking1_option is distinct from n.tracking1_option) as slot1_moved,
        (s.tracking2_name is distinct from n.tracking2_name
            or s.tracking2_option is distinct from n.tracking2_option) as slot2_moved
    from xero_sent_lines s
    join now_lines n using (practice_id, invoice_id, line_no)
    anti join changed_in_source c using (practice_id, invoice_id)
),

-- What the invoice's lines should carry once updated, as one text per invoice: a refusal is of this.
targets as (
    select practice_id, invoice_id,
           md5(string_agg(concat_ws('|', line_no, coalesce(tracking1_name, ''), coalesce(tracking1_option, ''),
                                    coalesce(tracking2_name, ''), coalesce(tracking2_option, '')),
                          ';' order by line_no)) as target_digest,
           bool_or(slot1_moved or slot2_moved) as moved
    from pairs
    group by all
),

latest_blocks as (
    select practice_id, invoice_id, digest, arg_max(messages, blocked_at) as messages
    from xero_retrack_blocks
    group by all
),

final as (
    select
        p.practice_id,
        p.invoice_id,
        p.invoice_number,
        p.xero_invoice_id,
        p.line_no,
        p.line_item_id,
        i.currency,
        p.line_amount,
        p.xero_tracking1_name,
        p.xero_tracking1_option,
        p.xero_tracking2_name,
        p.xero_tracking2_option,
        p.tracking1_name,
        p.tracking1_option,
        p.tracking2_name,
        p.tracking2_option,
        concat_ws(
            ', ',
            case when p.slot1_moved then 'client' end,
            case when p.slot2_moved then
                case lt.tracking2_source
                    when 'service' then 'template'
                    when 'owner' then 'owner'
                    else case when lt.line_type = 'service' then 'template' else 'owner' end
                end
            end
        ) as reason,
        t.target_digest,
        array_to_string(b.messages, ' ') as blocked
    from pairs p
    join targets t using (practice_id, invoice_id)
    left join xero_invoices i using (practice_id, invoice_id)
    left join line_tracking lt using (practice_id, invoice_id, line_id)
    left join latest_blocks b on b.practice_id = p.practice_id and b.invoice_id = p.invoice_id
        and b.digest = t.target_digest
    where t.moved and (p.slot1_moved or p.slot2_moved)
)

select * from final;

comment on view retrack_plan is 'The open retrack plan: one row per line of an invoice in Xero whose tracking resolved now differs from what Xero holds (a client''s partner changed, a template got an option, ...). `trackline retrack` prints it; `--apply` updates each invoice in Xero, only its Tracking. Lines of an invoice Xero refused to update for the same tracking carry Xero''s reason in blocked.';
comment on column retrack_plan.practice_id is 'The practice.';
comment on column retrack_plan.invoice_id is 'The invoice in the practice app.';
comment on column retrack_plan.invoice_number is 'InvoiceNumber in Xero.';
comment on column retrack_plan.xero_invoice_id is 'Xero''s InvoiceID.';
comment on column retrack_plan.line_no is 'The line, as sent (1 = first).';
comment on column retrack_plan.line_item_id is 'Xero''s LineItemID (kept by the update).';
comment on column retrack_plan.currency is 'Currency of the invoice.';
comment on column retrack_plan.line_amount is 'The line''s amount, exact to the cent (unchanged by the update).';
comment on column retrack_plan.xero_tracking1_name is 'Slot 1 category in Xero now.';
comment on column retrack_plan.xero_tracking1_option is 'Slot 1 option in Xero now.';
comment on column retrack_plan.xero_tracking2_name is 'Slot 2 category in Xero now.';
comment on column retrack_plan.xero_tracking2_option is 'Slot 2 option in Xero now.';
comment on column retrack_plan.tracking1_name is 'Slot 1 category resolved now.';
comment on column retrack_plan.tracking1_option is 'Slot 1 option resolved now.';
comment on column retrack_plan.tracking2_name is 'Slot 2 category resolved now.';
comment on column retrack_plan.tracking2_option is 'Slot 2 option resolved now.';
comment on column retrack_plan.reason is 'Why it moved: client (slot 1: the client''s option), template or owner (slot 2), comma-separated.';
comment on column retrack_plan.target_digest is 'MD5 of the tracking every line of the invoice would carry after the update.';
comment on column retrack_plan.blocked is 'Xero''s reason when it refused this very update (RETRACK_BLOCKED); null when it is still to apply.';
