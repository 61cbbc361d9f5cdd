/* plugin.c — the Babeltrace2 plugin `hakmem_native` and its sink `core`, which feeds every message it consumes to
 * the analysis core whose address its `core` parameter holds (the Python command made that core, and reads the
 * result from it once the graph has run). */
#include <babeltrace2/babeltrace.h>
#include <stdint.h>
#include <stdlib.h>

#include "core.h"

BT_PLUGIN_MODULE();
BT_PLUGIN(hakmem_native);
BT_PLUGIN_DESCRIPTION("hakmem allocator trace analysis core (driven by hakmem-trace)");
BT_PLUGIN_AUTHOR("hakmem");
BT_PLUGIN_LICENSE("see the hakmem repository");

struct sink {
    struct hk_core *core;
    bt_message_iterator *it;
};

static bt_component_class_initialize_method_status sink_init(bt_self_component_sink *self,
                                                             bt_self_component_sink_configuration *config,
                                                             const bt_value *params, void *init_data)
{
    (void)config;
    (void)init_data;
    const bt_value *core = params ? bt_value_map_borrow_entry_value_const(params, "core") : NULL;
    if (!core || !bt_value_is_signed_integer(core)) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_sink_as_self_component(self),
                                                            "parameter `core` (the core's address) is required");
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_ERROR;
    }
    struct sink *s = calloc(1, sizeof *s);
    if (!s)
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_MEMORY_ERROR;
    s->core = (struct hk_core *)(uintptr_t)bt_value_integer_signed_get(core);
    bt_self_component_set_data(bt_self_component_sink_as_self_component(self), s);
    if (bt_self_component_sink_add_input_port(self, "in", NULL, NULL) != BT_SELF_COMPONENT_ADD_PORT_STATUS_OK) {
        free(s);
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_ERROR;
    }
    return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
}

static void sink_finalize(bt_self_component_sink *self)
{
    struct sink *s = bt_self_component_get_data(bt_self_component_sink_as_self_component(self));
    bt_message_iterator_put_ref(s->it);
    free(s);  /* the core is the caller's */
}

static bt_component_class_sink_graph_is_configured_method_status sink_configured(bt_self_component_sink *self)
{
    struct sink *s = bt_self_component_get_data(bt_self_component_sink_as_self_component(self));
    bt_self_component_port_input *port = bt_self_component_sink_borrow_input_port_by_index(self, 0);
    if (bt_message_iterator_create_from_sink_component(self, port, &s->it) !=
        BT_MESSAGE_ITERATOR_CREATE_FROM_SINK_COMPONENT_STATUS_OK)
        return BT_COMPONENT_CLASS_SINK_GRAPH_IS_CONFIGURED_METHOD_STATUS_ERROR;
    return BT_COMPONENT_CLASS_SINK_GRAPH_IS_CONFIGURED_METHOD_STATUS_OK;
}

static bt_component_class_sink_consume_method_status sink_consume(bt_self_component_sink *self)
{
    struct sink *s = bt_self_component_get_data(bt_self_component_sink_as_self_component(self));
    bt_message_array_const msgs;
    uint64_t n;
    switch (bt_message_iterator_next(s->it, &msgs, &n)) {
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
        break;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_END;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_AGAIN;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_MEMORY_ERROR;
    default:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_ERROR;
    }
    int failed = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!failed && hk_core_message(s->core, msgs[i]) != 0)
            failed = 1;
        bt_message_put_ref(msgs[i]);
    }
    if (failed) {
        /* The reason is the core's (hk_core_failure): the command says it in its own words. */
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_sink_as_self_component(self), "%s",
                                                            hk_core_failure(s->core));
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_ERROR;
    }
    return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_OK;
}

BT_PLUGIN_SINK_COMPONENT_CLASS(core, sink_consume);
BT_PLUGIN_SINK_COMPONENT_CLASS_DESCRIPTION(core, "the hakmem analysis core: counts, OOM paths, losses");
BT_PLUGIN_SINK_COMPONENT_CLASS_INITIALIZE_METHOD(core, sink_init);
BT_PLUGIN_SINK_COMPONENT_CLASS_FINALIZE_METHOD(core, sink_finalize);
BT_PLUGIN_SINK_COMPONENT_CLASS_GRAPH_IS_CONFIGURED_METHOD(core, sink_configured);
