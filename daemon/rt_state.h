/* The state shared by stemd's compiled process callback (rt_callback.c) and Python
 * (daemon/rt_callback.py reads this very file into cffi, so the two can never disagree).
 * Only plain declarations and integer #defines: cffi parses it. */
#include <stddef.h>
#include <stdint.h>

#define MAX_STEM_PORTS 12
#define MAX_BLOCK 8192
#define MIDI_SLOT 256

typedef uint32_t jack_nframes_t;
typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;

typedef struct {
    volatile uint64_t *head; /* the ring's 64-byte header */
    float *data;             /* channels x capacity */
    uint32_t channels;
    uint64_t capacity;
} rt_ring;

typedef struct {
    volatile uint64_t written, read; /* counts of slots; each has one writer */
    uint32_t slots;
    uint32_t dropped; /* producer side: events that did not fit */
    unsigned char *data; /* slots x MIDI_SLOT */
} rt_midi_ring;

typedef struct {
    /* Set up by Python before activate (ports again after every reconnect). */
    jack_client_t *client;
    jack_port_t *in[2], *out[2], *mic, *stem_out[MAX_STEM_PORTS], *midi_in, *midi_out;
    uint32_t n_stem_ports;
    rt_ring in_ring, mic_ring, out_ring; /* out ring: out_L, out_R, then the stem ports' channels */
    rt_midi_ring midi_inbox, midi_outbox;
    uint64_t latency;   /* L: the dry signal for frame f is input frame f - L */
    uint32_t crossfade; /* frames of a switch between the rendered block and dry */
    volatile int rendering; /* a render thread exists (0: dry mode, the output is dry at gain 1) */
    volatile float dry_gain; /* published by the renderer: the mixer's dry level (master, mute all) */
    /* Published here, read by Python. */
    volatile uint64_t frame;     /* first frame of the latest cycle */
    volatile uint32_t nframes;   /* its length */
    volatile double cycle_time;  /* CLOCK_MONOTONIC seconds when it started (Python's time.monotonic) */
    volatile uint64_t periods, late, hard_switches;
    volatile int on_rendered;    /* this cycle's output was the rendered block, not faded at all */
    volatile int midi_listeners; /* ports midi_out feeds */
    /* Private to the callback. */
    float gain; /* the rendered block's share of the output, 0 = dry */
    float dry[2][MAX_BLOCK];
    float curve[MAX_BLOCK];
} rt_state;

int stemd_rt_install(rt_state *s);
size_t stemd_rt_state_size(void);
