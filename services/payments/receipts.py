"""E-mail receipts: queued with the payment's success, sent once through SMTP by a worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
from email.message import EmailMessage

import asyncpg

from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import Payment

log = logging.getLogger("payments.receipts")


def receipt_message(payment: Payment, sender: str, to: str) -> EmailMessage:
    amount = f"{payment.amount_captured // 100}.{payment.amount_captured % 100:02d} {payment.currency.upper()}"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"Your receipt: {amount}"
    message["X-Payment-Id"] = payment.id
    lines = [
        "Thank you for your payment.",
        "",
        f"Amount: {amount}",
        f"Date: {payment.local_date.isoformat()}",
        f"Reference: {payment.id}",
    ]
    if payment.description:
        lines.append(f"Description: {payment.description}")
    message.set_content("\n".join(lines) + "\n")
    return message


def _send(host: str, port: int, message: EmailMessage) -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)


async def send_due(ctx: Context) -> int:
    """Sends every due receipt; each is locked while sent so that replicas never send one twice."""
    host = ctx.settings.smtp_host
    if not host:
        return 0
    sent = 0
    while True:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await repo.claim_due_receipt(conn)
            if row is None:
                return sent
            payment = await repo.get_payment(conn, str(row["payment_id"]))
            assert payment is not None
            message = receipt_message(payment, ctx.settings.receipt_from, row["email"])
            try:
                await asyncio.to_thread(_send, host, ctx.settings.smtp_port, message)
            except (OSError, smtplib.SMTPException) as error:
                log.warning("receipt for %s not sent: %s", payment.id, error)
                await repo.finish_receipt(
                    conn, row["payment_id"], sent=False, error=str(error)[:500], attempts=row["attempts"] + 1
                )
                return sent
            await repo.finish_receipt(conn, row["payment_id"], sent=True, error=None, attempts=row["attempts"] + 1)
            sent += 1


async def run_worker(ctx: Context, every: float = 0.5) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await ctx.receipts_due.wait()
        ctx.receipts_due.clear()
        try:
            await send_due(ctx)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("receipt worker: %s", error)
