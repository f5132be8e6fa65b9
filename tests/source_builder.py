"""Tiny contract-shaped sources for tests: one practice on Xero with two categories, built up row by row.

`SourceBuilder().frames()` gives text frames as `flows.sources.files.read_source` would; `resolve()` runs the
resolution core on them; `write(folder)` writes CSV files for flow tests.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from transforms.parse_sources import ROW, TABLES, parse_table
from transforms.resolve_invoices import Resolution, default_files, resolve_invoices


class SourceBuilder:
    def __init__(self, practice_id: str = "p1", ledger: str = "xero", *, bare: bool = False) -> None:
        self.rows: dict[str, list[dict]] = {t: [] for t in TABLES}
        if bare:
            return
        self.practice(practice_id, ledger=ledger)
        self.category(practice_id, "cat-partner", "Partner")
        self.category(practice_id, "cat-dept", "Department")
        self.option(practice_id, "opt-pa", "cat-partner", "Partner A")
        self.option(practice_id, "opt-pb", "cat-partner", "Partner B")
        self.option(practice_id, "opt-book", "cat-dept", "Central Bookkeeping Team")
        self.option(practice_id, "opt-tax", "cat-dept", "Tax Team")
        self.member(practice_id, "tm-owner", "Olive Owner", option="opt-tax")
        self.template(practice_id, "svc-book", "Monthly Bookkeeping", option="opt-book")
        self.template(practice_id, "svc-accounts", "Annual Accounts", option=None)
        self.client(practice_id, "c1", "Acme Widgets Ltd", option="opt-pa", owner="tm-owner")

    def _add(self, table: str, **values) -> SourceBuilder:
        row = {c: None for c in TABLES[table]}
        unknown = set(values) - set(row)
        assert not unknown, f"{table} has no column {unknown}"
        row.update({k: None if v is None else str(v) for k, v in values.items()})
        self.rows[table].append(row)
        return self

    def practice(self, practice_id: str, name: str | None = None, ledger: str = "xero") -> SourceBuilder:
        return self._add(
            "practices", practice_id=practice_id, name=name or f"Practice {practice_id}", ledger=ledger
        )

    def category(
        self, practice_id: str, category_id: str, name: str, status: str = "ACTIVE"
    ) -> SourceBuilder:
        return self._add(
            "tracking_categories",
            practice_id=practice_id,
            tracking_category_id=category_id,
            name=name,
            status=status,
        )

    def option(
        self, practice_id: str, option_id: str, category_id: str, name: str, status: str = "ACTIVE"
    ) -> SourceBuilder:
        return self._add(
            "tracking_options",
            practice_id=practice_id,
            tracking_option_id=option_id,
            tracking_category_id=category_id,
            name=name,
            status=status,
        )

    def member(self, practice_id: str, member_id: str, name: str, option: str | None = None) -> SourceBuilder:
        return self._add(
            "team_members",
            practice_id=practice_id,
            team_member_id=member_id,
            name=name,
            tracking_option_id=option,
        )

    def template(
        self,
        practice_id: str,
        template_id: str,
        name: str,
        option: str | None = None,
        account_code: str | None = "200",
        tax_type: str | None = "OUTPUT2",
    ) -> SourceBuilder:
        return self._add(
            "service_templates",
            practice_id=practice_id,
            service_template_id=template_id,
            name=name,
            tracking_option_id=option,
            account_code=account_code,
            tax_type=tax_type,
        )

    def client(
        self,
        practice_id: str,
        client_id: str,
        name: str,
        option: str | None = None,
        owner: str | None = None,
        consolidate: bool | None = None,
        contact_id: str | None = None,
    ) -> SourceBuilder:
        return self._add(
            "clients",
            practice_id=practice_id,
            client_id=client_id,
            name=name,
            xero_contact_id=contact_id,
            owner_team_member_id=owner,
            tracking_option_id=option,
            consolidate_lines=None if consolidate is None else str(consolidate).lower(),
        )

    def invoice(
        self,
        practice_id: str,
        invoice_id: str,
        client_id: str = "c1",
        status: str = "approved",
        issue_date: str = "2026-01-15",
        updated_at: str = "2026-01-15T09:00:00Z",
        **overrides,
    ) -> SourceBuilder:
        values = dict(
            practice_id=practice_id,
            invoice_id=invoice_id,
            client_id=client_id,
            invoice_number=f"INV-{invoice_id}",
            issue_date=issue_date,
            due_date="2026-02-14",
            currency="GBP",
            reference=None,
            status=status,
            updated_at=updated_at,
        )
        values.update(overrides)
        return self._add("invoices", **values)

    def line(
        self,
        practice_id: str,
        invoice_id: str,
        line_id: str,
        line_type: str = "service",
        template: str | None = "svc-book",
        quantity: str = "1",
        unit_amount: str = "100.00",
        position: int | None = None,
        **overrides,
    ) -> SourceBuilder:
        same_invoice = [r for r in self.rows["invoice_lines"] if r["invoice_id"] == invoice_id]
        values = dict(
            practice_id=practice_id,
            invoice_id=invoice_id,
            line_id=line_id,
            position=position if position is not None else len(same_invoice) + 1,
            line_type=line_type,
            service_template_id=template,
            description=f"Work {line_id}",
            quantity=quantity,
            unit_amount=unit_amount,
            account_code=None,
            tax_type=None,
        )
        values.update(overrides)
        return self._add("invoice_lines", **values)

    def adhoc_line(self, practice_id: str, invoice_id: str, line_id: str, **overrides) -> SourceBuilder:
        """An `adhoc` line: no service template, so it carries its own account code and tax type."""
        values = dict(line_type="adhoc", template=None, account_code="200", tax_type="OUTPUT2")
        values.update(overrides)
        return self.line(practice_id, invoice_id, line_id, **values)

    def approved_invoice(
        self, practice_id: str, invoice_id: str, client_id: str = "c1", lines: int = 1
    ) -> SourceBuilder:
        """An approved invoice with `lines` service lines (svc-book, 1 × 100.00) named l1, l2, ..."""
        self.invoice(practice_id, invoice_id, client_id=client_id)
        for n in range(1, lines + 1):
            self.line(practice_id, invoice_id, f"l{n}")
        return self

    def frames(self) -> dict[str, pl.DataFrame]:
        out = {}
        for table, columns in TABLES.items():
            frame = pl.DataFrame(self.rows[table], schema={c: pl.Utf8 for c in columns}, orient="row")
            out[table] = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
        return out

    def resolve(self, policy: str = "hold", scope: pl.DataFrame | None = None) -> Resolution:
        files = default_files()
        typed, problems = {}, []
        for table, frame in self.frames().items():
            typed[table], found = parse_table(table, frame.lazy(), files[table])
            problems.append(found)
        collected = {t: f.collect().lazy() for t, f in typed.items()}
        return resolve_invoices(
            collected,
            pl.concat(problems).collect().lazy(),
            scope=None if scope is None else scope.lazy(),
            policy=policy,
            files=files,
        )

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for table, frame in self.frames().items():
            frame.drop(ROW).write_csv(folder / f"{table}.csv")
        return folder
