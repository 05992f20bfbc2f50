from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "quartermaster.sales"
    label = "sales"
    verbose_name = "Sales: customers, transactions, invoices, credit notes, payments"
