from django.apps import AppConfig


class ClusterConfig(AppConfig):
    name = "quartermaster.cluster"
    label = "cluster"
    verbose_name = "Cluster: changes of the PostgreSQL primary under pg_auto_failover"
