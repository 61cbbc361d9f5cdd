"""The event catalogue of tracepoints/hakmem_tp.h, mirrored once for Python (tests/trace keeps them in step)."""

PROVIDER = "hakmem"

# Outcome enumerations: label -> value, as in the HAKMEM_TP_* lists.
ENUMS = {
    "claim_outcome": {"claimed": 0, "full": 1, "lost_race": 2, "cap_refused": 3},
    "mid_path": {"multi_stage": 0, "simple": 1},
    "mid_why": {"option_off": 0, "option_on": 1},
    "expand_outcome": {"reused_chained_chunk": 0, "new_chunk": 1, "lost_race": 2, "failed": 3},
    "fail_reason": {"none": 0, "os": 1, "cap": 2, "injected": 3},
    "refill_result": {"claimed": 0, "adopted": 1, "null": 2},
    "adopt_stage": {"before_claim": 0, "after_refusal": 1},
    "adopt_outcome": {"adopted": 0, "none": 1},
    "reclaim_outcome": {"reclaimed_retry": 0, "others_reclaimed_retry": 1, "gave_up": 2},
    "alloc_call": {"malloc": 0, "calloc": 1, "realloc": 2, "reallocarray": 3, "posix_memalign": 4,
                   "aligned_alloc": 5, "memalign": 6, "valloc": 7, "pvalloc": 8},
}

# The class index `oom` reports for the large path.
LARGE_CLASS = 255

# event -> (loglevel, [(field, kind)]); kind is "int", "hex", "enum:<name>" or "hex_seq" (a sequence of addresses).
EVENTS = {
    "refill_enter": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"),
        ("thread_chunk", "hex"), ("current_chunk", "hex"),
    ]),
    "slab_adopt": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("stage", "enum:adopt_stage"),
        ("outcome", "enum:adopt_outcome"), ("slab", "hex"),
    ]),
    "bitmap_check": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("chunk", "hex"),
        ("bitmap", "hex"), ("full_mask", "hex"), ("capacity", "int"), ("active_slabs", "int"),
        ("outcome", "enum:claim_outcome"),
    ]),
    "mid_simple_choice": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("enabled", "int"),
        ("path", "enum:mid_path"), ("why", "enum:mid_why"),
    ]),
    "chunk_expand": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("outcome", "enum:expand_outcome"),
        ("chunk", "hex"), ("chunk_count", "int"), ("waited", "int"),
    ]),
    "superslab_alloc_fail": ("WARNING", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("bytes", "int"),
        ("err", "int"), ("reason", "enum:fail_reason"),
    ]),
    "reclaim_retry": ("WARNING", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("attempt", "int"),
        ("outcome", "enum:reclaim_outcome"), ("given_back", "int"), ("stolen_slabs", "int"),
    ]),
    "refill_exit": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("slab", "hex"),
        ("result", "enum:refill_result"),
    ]),
    "oom_memory": ("ERR", [
        ("seq", "int"), ("cap", "int"), ("committed", "int"), ("large", "int"), ("tracer", "int"),
        ("classes", "int"),
    ]),
    "oom_class_memory": ("ERR", [
        ("seq", "int"), ("class_idx", "int"), ("block_size", "int"), ("committed", "int"), ("live", "int"),
        ("free", "int"), ("holder_tid", "int"), ("holder_free", "int"),
    ]),
    "oom": ("ERR", [
        ("size", "int"), ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("oom_no", "int"),
        ("call", "enum:alloc_call"), ("count", "int"), ("align", "int"), ("old_ptr", "hex"), ("snapshot", "int"),
    ]),
    "call_stack": ("WARNING", [("seq", "int"), ("oom_no", "int"), ("frames", "hex_seq")]),
    "heap_sample": ("INFO", [
        ("ptr", "hex"), ("size", "int"), ("class_idx", "int"), ("mean", "int"), ("frames", "hex_seq"),
    ]),
    "heap_sample_free": ("INFO", [("ptr", "hex"), ("size", "int")]),
    "exit_totals": ("WARNING", [("ooms", "int"), ("refills", "int"), ("classes", "int")]),
    "exit_class_totals": ("WARNING", [
        ("class_idx", "int"), ("block_size", "int"), ("refills", "int"), ("ooms", "int"),
    ]),
}

# The order of one refill that ends in an OOM (the decisions a thread takes).
OOM_PATH = ["refill_enter", "bitmap_check", "mid_simple_choice", "chunk_expand",
            "superslab_alloc_fail", "refill_exit", "oom"]
# Every step a refill can take, in procedure order: OOM_PATH and the adoption attempts (before the first claim
# on the multi-stage path, and after the last refusal) and each reclaim-and-retry after a refusal.
PATH_STEPS = ["refill_enter", "slab_adopt", "bitmap_check", "mid_simple_choice", "chunk_expand",
              "superslab_alloc_fail", "reclaim_retry", "refill_exit", "oom"]


def full_name(event):
    return f"{PROVIDER}:{event}"
