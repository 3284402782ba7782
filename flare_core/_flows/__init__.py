"""The client flows: one generator per ``SessionSpec`` method (sans-I/O).

A flow validates its arguments, yields ``flare_core._steps`` steps (plus ``Notify`` for the
monitor callback) and returns the method's result; ``flare_adapters.session`` runs them over
a transport, synchronously or asynchronously. Every behaviour of the client half lives here
once.
"""

from flare_core._flows._calls import call, download, exchange, unwrap, upload
from flare_core._flows._context import ClientFlow, FlowContext, FlowStep, Notify, RetryPolicy
from flare_core._flows._jobs import (
    abort_job,
    clone_job,
    configure_job_log,
    delete_job,
    download_job_components,
    download_job_result,
    get_job_logs,
    get_job_meta,
    list_job_components,
    list_jobs,
    submit_job,
)
from flare_core._flows._monitor import (
    MonitorCallback,
    monitor_job_and_return_job_meta,
    wait_for_job,
)
from flare_core._flows._shell import run_shell
from flare_core._flows._stats import reset_errors, show_errors, show_stats
from flare_core._flows._studies import (
    add_study_site,
    add_study_user,
    list_studies,
    register_study,
    remove_study,
    remove_study_site,
    remove_study_user,
    show_study,
)
from flare_core._flows._system import (
    POLL_INTERVAL,
    check_status,
    client_job_rows,
    configure_site_log,
    disable_client,
    enable_client,
    get_available_apps_to_upload,
    get_client_job_status,
    get_connected_client_list,
    get_system_info,
    remove_client,
    report_resources,
    report_version,
    restart,
    set_timeout,
    shutdown,
    shutdown_system,
    system_info_from_status,
    unset_timeout,
)

__all__ = [
    "POLL_INTERVAL",
    "ClientFlow",
    "FlowContext",
    "FlowStep",
    "MonitorCallback",
    "Notify",
    "RetryPolicy",
    "abort_job",
    "add_study_site",
    "add_study_user",
    "call",
    "check_status",
    "client_job_rows",
    "clone_job",
    "configure_job_log",
    "configure_site_log",
    "delete_job",
    "disable_client",
    "download",
    "download_job_components",
    "download_job_result",
    "enable_client",
    "exchange",
    "get_available_apps_to_upload",
    "get_client_job_status",
    "get_connected_client_list",
    "get_job_logs",
    "get_job_meta",
    "get_system_info",
    "list_job_components",
    "list_jobs",
    "list_studies",
    "monitor_job_and_return_job_meta",
    "register_study",
    "remove_client",
    "remove_study",
    "remove_study_site",
    "remove_study_user",
    "report_resources",
    "report_version",
    "reset_errors",
    "restart",
    "run_shell",
    "set_timeout",
    "show_errors",
    "show_stats",
    "show_study",
    "shutdown",
    "shutdown_system",
    "submit_job",
    "system_info_from_status",
    "unset_timeout",
    "unwrap",
    "upload",
    "wait_for_job",
]
