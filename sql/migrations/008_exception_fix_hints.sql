-- Every exception says what to do, not only what is wrong: a one-sentence fix in the finance lead's words,
-- built from the same row and value as the detail (transforms/hold_reasons.py and the other places codes
-- are made). Rows opened before this migration get theirs the next time a run or push finds them.
alter table exceptions add column fix varchar;
comment on column exceptions.fix is 'What to do about it, in one sentence naming the row and value to change (in the practice app, or in Xero for XERO_ codes); the next run or push finds it fixed and closes it.';
alter table exception_history add column fix varchar;
comment on column exception_history.fix is 'The fix it said while it was open.';
