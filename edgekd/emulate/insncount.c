/*
 * edgekd instruction counter: a QEMU TCG plugin (qemu-user) that counts executed guest
 * instructions per guest thread and records the running total whenever the guest issues the
 * edgekd marker syscall.  The guest brackets each inference with markers, so the host can take
 * differences and exclude setup (interpreter start, model load, warm-up) from the count.
 *
 * Per-thread counters instead of one shared inline counter: inline adds from several vCPU threads
 * race and lose counts, which made multi-threaded runtimes (ONNX Runtime helpers) non-repeatable.
 *
 * Plugin arguments: out=<file>  (one line per marker: "mark <id> <total>", then "total <n>")
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 1024
#define MARKER_SYSCALL 0x4544 /* unused syscall number on aarch64: qemu returns -ENOSYS */
#define MARKER_MAGIC 0x6564676b64ULL /* "edgkd": second argument, so a stray call is ignored */

/* one cache line per thread so counting threads never share a line */
typedef struct {
    uint64_t n;
    uint8_t pad[56];
} counter_t;

static counter_t counters[MAX_VCPUS];
static uint64_t overflow; /* threads past MAX_VCPUS: rare, counted atomically */
static FILE *out;

static uint64_t total(void)
{
    uint64_t sum = __atomic_load_n(&overflow, __ATOMIC_RELAXED);
    for (int i = 0; i < MAX_VCPUS; i++) {
        sum += __atomic_load_n(&counters[i].n, __ATOMIC_RELAXED);
    }
    return sum;
}

static void tb_exec(unsigned int vcpu, void *udata)
{
    uint64_t n = (uint64_t)(uintptr_t)udata;
    if (vcpu < MAX_VCPUS) {
        /* only this thread writes its slot; relaxed store keeps the marker's read tear-free */
        __atomic_store_n(&counters[vcpu].n, counters[vcpu].n + n, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&overflow, n, __ATOMIC_RELAXED);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    if (num == MARKER_SYSCALL && a2 == MARKER_MAGIC && out) {
        fprintf(out, "mark %" PRIu64 " %" PRIu64 "\n", a1, total());
        fflush(out);
    }
}

static void at_exit_cb(qemu_plugin_id_t id, void *p)
{
    if (out) {
        fprintf(out, "total %" PRIu64 "\n", total());
        fclose(out);
        out = NULL;
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            path = argv[i] + 4;
        }
    }
    if (!path) {
        fprintf(stderr, "edgekd insncount: missing out=<file>\n");
        return -1;
    }
    out = fopen(path, "w");
    if (!out) {
        perror("edgekd insncount: out");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit_cb, NULL);
    return 0;
}
