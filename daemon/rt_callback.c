/* stemd's JACK process callback, compiled: per period it only copies, so the JACK thread never
 * needs the Python interpreter (no GIL, no GC, no allocation, no lock, no log, no wait).
 *
 * Per period of n frames starting at absolute frame f (the input ring's `written`):
 *  - in_L/in_R go into the input ring at f, the mic port into the mic ring;
 *  - the output for frame f is the block the Python render thread wrote ahead of time into the
 *    output ring (out_L, out_R, then every <stem>_L/_R), when it is there with enough queued behind
 *    it for a whole fade; otherwise it is the delayed dry signal (input ring at f - L) at the last
 *    dry gain the renderer published, reached by a linear crossfade over what is still queued — the
 *    same "fade only on audio that exists" rule as the engine's dry fallback, so never a click and
 *    never silence;
 *  - JACK MIDI: incoming events are copied into a slot ring (with their JACK frame time), queued
 *    outgoing events from another slot ring into midi_out.
 * The ring layout is daemon/ring.py's: a 64-byte header of uint64 written / valid_from / read, then
 * float32 channels x capacity. Each counter has one writer; x86-64 keeps stores in order (TSO), and
 * the compiler barriers below keep the compiler from reordering them.
 *
 * libjack's functions are declared here (the ABI is stable) so no JACK headers are needed to build.
 */
#include <string.h>
#include <time.h>

#include "rt_state.h"

typedef struct { jack_nframes_t time; size_t size; unsigned char *buffer; } jack_midi_event_t;

extern void *jack_port_get_buffer(jack_port_t *port, jack_nframes_t frames);
extern int jack_set_process_callback(jack_client_t *client, int (*cb)(jack_nframes_t, void *), void *arg);
extern jack_nframes_t jack_last_frame_time(const jack_client_t *client);
extern int jack_port_connected(const jack_port_t *port);
extern uint32_t jack_midi_get_event_count(void *port_buffer);
extern int jack_midi_event_get(jack_midi_event_t *event, void *port_buffer, uint32_t index);
extern void jack_midi_clear_buffer(void *port_buffer);
extern unsigned char *jack_midi_event_reserve(void *port_buffer, jack_nframes_t time, size_t size);

#define BARRIER() __asm__ __volatile__("" ::: "memory")
#define MIDI_DATA (MIDI_SLOT - 8)

enum { WRITTEN = 0, VALID_FROM = 1, READ = 2 };

static void ring_put(rt_ring *r, uint32_t c, const float *src, uint64_t at, uint32_t n) {
    uint64_t slot = at % r->capacity, first = r->capacity - slot < n ? r->capacity - slot : n;
    float *row = r->data + (uint64_t)c * r->capacity;
    memcpy(row + slot, src, first * sizeof(float));
    if (first < n) memcpy(row, src + first, (n - first) * sizeof(float));
}

static void ring_get(const rt_ring *r, uint32_t c, float *dst, uint64_t at, uint32_t n) {
    uint64_t slot = at % r->capacity, first = r->capacity - slot < n ? r->capacity - slot : n;
    const float *row = r->data + (uint64_t)c * r->capacity;
    memcpy(dst, row + slot, first * sizeof(float));
    if (first < n) memcpy(dst + first, row, (n - first) * sizeof(float));
}

/* Are frames [at, at + n) in the ring (written since its last seek, not yet overwritten)? */
static int ring_has(const rt_ring *r, uint64_t at, uint32_t n) {
    uint64_t written = r->head[WRITTEN], valid = r->head[VALID_FROM];
    uint64_t oldest = written > r->capacity && written - r->capacity > valid ? written - r->capacity : valid;
    return at >= oldest && at + n <= written;
}

static void write_input(rt_state *s, uint64_t f, uint32_t n) {
    for (uint32_t c = 0; c < 2; c++)
        ring_put(&s->in_ring, c, jack_port_get_buffer(s->in[c], n), f, n);
    BARRIER();
    s->in_ring.head[WRITTEN] = f + n;
    if (s->mic != NULL) {
        uint64_t m = s->mic_ring.head[WRITTEN];
        ring_put(&s->mic_ring, 0, jack_port_get_buffer(s->mic, n), m, n);
        BARRIER();
        s->mic_ring.head[WRITTEN] = m + n;
    }
}

/* The dry signal for frames [f, f + n) at `gain`; silence before the input ring has it (start-up). */
static void read_dry(rt_state *s, uint64_t f, uint32_t n, float gain) {
    int have = f >= s->latency && ring_has(&s->in_ring, f - s->latency, n);
    for (uint32_t c = 0; c < 2; c++) {
        if (!have) { memset(s->dry[c], 0, n * sizeof(float)); continue; }
        ring_get(&s->in_ring, c, s->dry[c], f - s->latency, n);
        if (gain != 1.0f)
            for (uint32_t i = 0; i < n; i++) s->dry[c][i] *= gain;
    }
}

/* out = dry + g (rendered - dry), g ramping by 1/crossfade per frame toward `target`. */
static void write_output(rt_state *s, uint64_t f, uint32_t n, int have, float target) {
    float g = s->gain, step = (target > g ? 1.0f : -1.0f) / (float)s->crossfade;
    for (uint32_t i = 0; i < n; i++) {
        float v = g + step * (float)(i + 1);
        s->curve[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    int steady = g == target;
    if (!steady) s->gain = s->curve[n - 1];
    for (uint32_t c = 0; c < 2; c++) {
        float *out = jack_port_get_buffer(s->out[c], n);
        if (steady && g == 0.0f) { memcpy(out, s->dry[c], n * sizeof(float)); continue; }
        ring_get(&s->out_ring, c, out, f, n);
        if (steady) continue;
        for (uint32_t i = 0; i < n; i++) out[i] = s->dry[c][i] + s->curve[i] * (out[i] - s->dry[c][i]);
    }
    for (uint32_t p = 0; p < s->n_stem_ports; p++) {
        float *out = jack_port_get_buffer(s->stem_out[p], n);
        if (!have || (steady && g == 0.0f)) { memset(out, 0, n * sizeof(float)); continue; }
        ring_get(&s->out_ring, 2 + p, out, f, n);
        if (!steady)
            for (uint32_t i = 0; i < n; i++) out[i] *= s->curve[i];
    }
}

static void output(rt_state *s, uint64_t f, uint32_t n) {
    if (!s->rendering) { /* dry mode: no mixer, the output is the delayed input */
        read_dry(s, f, n, 1.0f);
        write_output(s, f, n, 0, 0.0f);
        return;
    }
    read_dry(s, f, n, s->dry_gain);
    int have = ring_has(&s->out_ring, f, n);
    uint64_t queued = have ? s->out_ring.head[WRITTEN] - f - n : 0;
    /* Stay on the rendered blocks only while a whole fade-out fits in what is queued behind this one:
     * should the renderer stop now, the fade still has its audio. */
    float target = have && queued >= s->crossfade ? 1.0f : 0.0f;
    if (target == 0.0f) {
        s->late++;
        if (!have && s->gain > 0.0f) {
            s->hard_switches++;
            s->gain = 0.0f;
        }
    }
    write_output(s, f, n, have, target);
    if (have) s->out_ring.head[READ] = f + n;
    s->on_rendered = target == 1.0f && s->gain == 1.0f;
}

static void midi(rt_state *s, uint32_t n) {
    if (s->midi_in != NULL) {
        void *buf = jack_port_get_buffer(s->midi_in, n);
        rt_midi_ring *r = &s->midi_inbox;
        uint32_t count = jack_midi_get_event_count(buf);
        jack_nframes_t base = jack_last_frame_time(s->client);
        for (uint32_t i = 0; i < count; i++) {
            jack_midi_event_t ev;
            if (jack_midi_event_get(&ev, buf, i) != 0) continue;
            if (ev.size == 0 || ev.size > MIDI_DATA || r->written - r->read >= r->slots) {
                r->dropped++;
                continue;
            }
            unsigned char *slot = r->data + (r->written % r->slots) * MIDI_SLOT;
            uint32_t head[2] = {base + ev.time, (uint32_t)ev.size};
            memcpy(slot, head, 8);
            memcpy(slot + 8, ev.buffer, ev.size);
            BARRIER();
            r->written++;
        }
    }
    if (s->midi_out != NULL) {
        void *buf = jack_port_get_buffer(s->midi_out, n);
        rt_midi_ring *r = &s->midi_outbox;
        jack_midi_clear_buffer(buf);
        s->midi_listeners = jack_port_connected(s->midi_out);
        while (r->read < r->written) {
            unsigned char *slot = r->data + (r->read % r->slots) * MIDI_SLOT;
            uint32_t head[2];
            memcpy(head, slot, 8);
            unsigned char *space = jack_midi_event_reserve(buf, 0, head[1]);
            if (space == NULL) break; /* port buffer full: the rest goes out next cycle */
            memcpy(space, slot + 8, head[1]);
            BARRIER();
            r->read++;
        }
    }
}

static int process(jack_nframes_t n, void *arg) {
    rt_state *s = arg;
    struct timespec now;
    if (n == 0 || n > MAX_BLOCK) return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t f = s->in_ring.head[WRITTEN];
    write_input(s, f, n);
    output(s, f, n);
    midi(s, n);
    s->periods++;
    s->cycle_time = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
    s->nframes = n;
    BARRIER();
    s->frame = f; /* last: a reader that sees the new frame sees its time and length */
    return 0;
}

/* Make `process` the client's process callback (before jack_activate). */
int stemd_rt_install(rt_state *s) {
    return jack_set_process_callback(s->client, process, s);
}

size_t stemd_rt_state_size(void) { return sizeof(rt_state); }
