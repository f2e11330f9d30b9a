"""`pntk plan`: what a config costs before it runs, and how a finished run compared.

    workflow  plan_workflow: jobs, FLOPs, bytes, peak memory and time per rule
    text      format_plan: the table and totals as `pntk plan` prints them
    costs     the cost of one job of each rule (CostModel, model_facts)
    devices   this CPU (calibrated, cached) or a named GPU (datasheet): DeviceProfile, device_profile
    check     --compare: planned vs measured time per rule from a Snakemake log

Members are imported on first use: `pntk check` asks devices for a device name without torch.
"""
from .._lazy import lazy_members

_MEMBERS = {"compare": "check", "format_comparison": "check", "pick_log": "check", "COSTS": "devices",
            "GPUS": "devices", "DeviceProfile": "devices", "check_device_name": "devices",
            "device_profile": "devices", "host_profile": "devices", "WorkflowPlan": "workflow",
            "format_plan": "text", "human_seconds": "text", "plan_workflow": "workflow",
            "job_counts": "workflow", "store_bytes": "workflow", "RULES": "workflow", "RulePlan": "workflow"}
__getattr__ = lazy_members(__name__, _MEMBERS)

__all__ = sorted(_MEMBERS)
