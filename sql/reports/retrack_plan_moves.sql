-- retrack_plan_moves: the retrack plan in totals, per practice and option move ("Partner A -> Partner B: 412
-- lines, 183,240.00"); a line whose two slots moved counts once in each of its moves. It reads the view
-- retrack_plan, made before it (views are made in name order).
create or replace view retrack_plan_moves as
with moves as (
    select practice_id, currency, invoice_id, line_amount, blocked is not null as blocked,
           coalesce(tracking1_name, xero_tracking1_name) as category,
           coalesce(xero_tracking1_option, '(none)') as from_option,
           coalesce(tracking1_option, '(none)') as to_option
    from retrack_plan
    where xero_tracking1_name is distinct from tracking1_name
       or xero_tracking1_option is distinct from tracking1_option
    union all
    select practice_id, currency, invoice_id, line_amount, blocked is not null,
           coalesce(tracking2_name, xero_tracking2_name),
           coalesce(xero_tracking2_option, '(none)'),
           coalesce(tracking2_option, '(none)')
    from retrack_plan
    where xero_tracking2_name is distinct from tracking2_name
       or xero_tracking2_option is distinct from tracking2_option
),

final as (
    select
        practice_id,
        category,
        from_option,
        to_option,
        currency,
        count(distinct invoice_id) as invoices,
        count(*) as lines,
        sum(line_amount)::decimal(38, 2) as amount,
        count(*) filter (where blocked) as blocked_lines
    from moves
    group by all
)

select * from final;

comment on view retrack_plan_moves is 'The open retrack plan (retrack_plan) in totals: per practice, category and option move, the invoices, lines and money `trackline retrack --apply` would move, and the lines Xero refused to update (RETRACK_BLOCKED).';
comment on column retrack_plan_moves.practice_id is 'The practice.';
comment on column retrack_plan_moves.category is 'The tracking category of the move.';
comment on column retrack_plan_moves.from_option is 'The option in Xero now ((none): no option).';
comment on column retrack_plan_moves.to_option is 'The option resolved now ((none): no option).';
comment on column retrack_plan_moves.currency is 'Currency of the invoices.';
comment on column retrack_plan_moves.invoices is 'Invoices with a line making this move.';
comment on column retrack_plan_moves.lines is 'Lines making this move.';
comment on column retrack_plan_moves.amount is 'Their amount, exact to the cent.';
comment on column retrack_plan_moves.blocked_lines is 'Of those lines, the ones Xero refused to update (RETRACK_BLOCKED).';
