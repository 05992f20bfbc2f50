from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "quartermaster.sales"
    label = "sales"
    verbose_name = "Sales: customers, transactions, invoices, credit notes, payments"

    def ready(self) -> None:
        from quartermaster.notifications import attachments
        from quartermaster.sales.mailing import invoice_pdf, mark_emailed
        from quartermaster.sales.services import INVOICE_EMAIL_TEMPLATE

        attachments.register(INVOICE_EMAIL_TEMPLATE, invoice_pdf, on_sent=mark_emailed)
