from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "quartermaster.sales"
    label = "sales"
    verbose_name = "Sales: customers, transactions, invoices, credit notes, payments"

    def ready(self) -> None:
        # A party user may sign in as a customer: the users API links one through UpdateCustomer.
        from quartermaster.identity import parties
        from quartermaster.sales.selectors import customers_of_users
        from quartermaster.sales.services import UpdateCustomer

        parties.register(
            parties.PartyKind(
                name="customer",
                link=lambda customer, user: UpdateCustomer(id=customer, user=user),
                linked=customers_of_users,
            )
        )
        # An invoice e-mailed through the outbox carries its PDF, built when it is sent.
        from quartermaster.notifications import attachments
        from quartermaster.sales.mailing import invoice_pdf, mark_emailed
        from quartermaster.sales.services import INVOICE_EMAIL_TEMPLATE

        attachments.register(INVOICE_EMAIL_TEMPLATE, invoice_pdf, on_sent=mark_emailed)
