/* Amity's version state as Redis module commands: AMITY.APPLY, AMITY.STAMP and AMITY.FIRSTHOPS.
 *
 * Each command does what one Lua script of shared/state.py does (_APPLY_LUA, _STAMP_LUA, _FIRST_HOPS_LUA), with
 * the same arguments (numkeys key [key ...] arg [arg ...], as EVALSHA takes them after the sha), the same replies
 * and the same writes. The scripts are the reference, and this file follows them step by step; read them first:
 * their comments document every KEYS/ARGV slot, every reply and the hash layout. Where this file departs from a
 * literal transcription, it says so.
 *
 * - Numbers are doubles, as they are in Lua 5.1: offsets, marks, counters, ttls and the hold kind are compared,
 *   added and formatted as the scripts do it (a field name 'c' .. offset uses Lua's "%.14g", a number passed to
 *   redis.call Redis's "%.17g"), and packed as Redis's cmsgpack packs a Lua number.
 * - A Lua runtime error (an hlc past its last value, HSET given a nil, a key of the wrong type...) becomes an error
 *   reply at the same point of the batch, after the same writes: Redis does not roll back a script that fails.
 * - Arguments of the wrong shape (not what the Python callers send) are refused with an error reply before
 *   anything is written, where the script might have written some keys first or read them differently.
 * - A merged context the apply script packs with cmsgpack.pack (Lua table order) is packed here with its regions
 *   sorted: readers decode it, and no decision depends on its byte order.
 *
 * - A first-hops reply lists each hash's memos in offset order. The script lists them as `pairs` visits its Lua
 *   table, an order that follows the server's random hash seed where the memo hash is hashtable-encoded, so it
 *   differs from one server to another; readers take the memos as a map.
 * - Writes are signalled (WATCH, client tracking) and notified (keyspace events hset, expire, persist, del) as the
 *   scripts' HSET, PEXPIRE and PERSIST do, and only where they write.
 * - Replication: a command that wrote is replicated verbatim (ReplicateVerbatim), so replicas and an AOF replay need
 *   the module loaded, and a ttl counts from when they run it; a script replicates its effects, PEXPIRE as PEXPIREAT.
 *   Keys are not declared to Redis (the state hashes travel inside a msgpack argument): for a standalone Redis.
 *
 * The module has no redismodule.h: the few API functions it uses are looked up by name when it loads.
 * Build: amity.dev.native (`amity dev install`), or cc -O2 -fPIC -shared -o amity_state.so amity_state.c -lm;
 * load: redis-server --loadmodule /path/amity_state.so.
 * Tested against the scripts: tests/integration/conflicts/test_state_module.py.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

/* ---------------------------------------------------------------------------------------------------------------
 * The module API, declared here (no redismodule.h): opaque types, the constants used, and function pointers filled
 * by name at load time.
 */
typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleCallReply RedisModuleCallReply;
typedef int (*CommandFunc)(RedisModuleCtx *, RedisModuleString **, int);

#define M_OK 0
#define M_ERR 1
#define M_READ 1
#define M_WRITE 2
#define M_HASH_CFIELDS (1 << 2)
#define M_NO_EXPIRE -1
#define M_KEYTYPE_EMPTY 0
#define M_KEYTYPE_HASH 3
#define M_REPLY_STRING 0
#define M_REPLY_ERROR 1
#define M_REPLY_ARRAY 3
#define M_REPLY_NULL 4
#define M_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED (1 << 1)
#define M_NOTIFY_GENERIC (1 << 2)
#define M_NOTIFY_HASH (1 << 6)

static int (*m_GetApi)(const char *, void *);
static int (*m_CreateCommand)(RedisModuleCtx *, const char *, CommandFunc, const char *, int, int, int);
static void (*m_SetModuleAttribs)(RedisModuleCtx *, const char *, int, int);
static void (*m_SetModuleOptions)(RedisModuleCtx *, int);
static RedisModuleKey *(*m_OpenKey)(RedisModuleCtx *, RedisModuleString *, int);
static void (*m_CloseKey)(RedisModuleKey *);
static int (*m_KeyType)(RedisModuleKey *);
static int (*m_HashGet)(RedisModuleKey *, int, ...);
static int (*m_HashSet)(RedisModuleKey *, int, ...);
static int (*m_SetExpire)(RedisModuleKey *, long long);
static long long (*m_GetExpire)(RedisModuleKey *);
static int (*m_DeleteKey)(RedisModuleKey *);
static RedisModuleString *(*m_CreateString)(RedisModuleCtx *, const char *, size_t);
static void (*m_FreeString)(RedisModuleCtx *, RedisModuleString *);
static const char *(*m_StringPtrLen)(const RedisModuleString *, size_t *);
static RedisModuleCallReply *(*m_Call)(RedisModuleCtx *, const char *, const char *, ...);
static int (*m_CallReplyType)(RedisModuleCallReply *);
static size_t (*m_CallReplyLength)(RedisModuleCallReply *);
static RedisModuleCallReply *(*m_CallReplyArrayElement)(RedisModuleCallReply *, size_t);
static const char *(*m_CallReplyStringPtr)(RedisModuleCallReply *, size_t *);
static void (*m_FreeCallReply)(RedisModuleCallReply *);
static int (*m_ReplyWithArray)(RedisModuleCtx *, long);
static int (*m_ReplyWithLongLong)(RedisModuleCtx *, long long);
static int (*m_ReplyWithStringBuffer)(RedisModuleCtx *, const char *, size_t);
static int (*m_ReplyWithError)(RedisModuleCtx *, const char *);
static int (*m_WrongArity)(RedisModuleCtx *);
static int (*m_ReplicateVerbatim)(RedisModuleCtx *);
static int (*m_SignalModifiedKey)(RedisModuleCtx *, RedisModuleString *);
static int (*m_NotifyKeyspaceEvent)(RedisModuleCtx *, int, const char *, RedisModuleString *);
static void *(*m_Alloc)(size_t);
static void (*m_Free)(void *);

/* ---------------------------------------------------------------------------------------------------------------
 * One command's working memory: an arena freed when the command ends, the error to answer (set by `fail`, which
 * jumps back to the command's entry), and what must be released on the way out.
 */
typedef struct { const char *p; size_t n; int set; } Bytes; /* set == 0: Lua's nil (or false) */

typedef struct Block { struct Block *next; size_t used, cap; char data[]; } Block;

typedef struct { const char *s; size_t n; double v; } Entry;
typedef struct { Entry *e; int n, cap; } Vec; /* a vector as a Lua table: region -> counter */


typedef struct {
    Bytes name;
    int left;   /* the key's records not decided yet (claims_per_key / last_claim) */
    int loaded; /* an earlier record of the batch read the key: its state waits here (`waiting[key]`) */
    RedisModuleKey *h;
    RedisModuleString *hname;
    Bytes held, merged, top, held_vector, first, seen_merged, seen_top;
    int has_ttl; /* the script's `applied` (apply) / `ttl` (stamp) is not false */
    double ttl;
    Vec context; /* stamp: the context, unpacked once and changed in place */
} KeyState;

typedef struct {
    RedisModuleCtx *ctx;
    RedisModuleString **keys;
    int numkeys;
    RedisModuleString **args;
    int nargs;
    jmp_buf jb;
    char err[320];
    Block *arena;
    RedisModuleCallReply *reply; /* a Call reply being read, freed on the way out */
    KeyState *ks;                /* the batch's keys, closed on the way out if still open */
    int nks;
    int wrote;
} Cmd;

static void fail(Cmd *c, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(Cmd *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    longjmp(c->jb, 1);
}

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

#ifdef AMITY_DEBUG_ALLOC
/* Debug builds (-DAMITY_DEBUG_ALLOC with -fsanitize=address): every allocation its own malloc, whose bounds the
 * sanitizer knows; Redis's allocator is not instrumented. */
static void *arena_block(size_t n) { return malloc(n); }
static void arena_free(void *p) { free(p); }
#define ARENA_BLOCK 0
#else
static void *arena_block(size_t n) { return m_Alloc(n); }
static void arena_free(void *p) { m_Free(p); }
#define ARENA_BLOCK 16384
#endif

static void *aalloc(Cmd *c, size_t n) {
    n = (n + 7) & ~(size_t)7;
    Block *b = c->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = arena_block(sizeof(Block) + cap);
        b->next = c->arena;
        b->used = 0;
        b->cap = cap;
        c->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void *azalloc(Cmd *c, size_t n) {
    void *p = aalloc(c, n);
    memset(p, 0, n);
    return p;
}

static const Bytes NIL = {NULL, 0, 0};

static Bytes bytes(const char *p, size_t n) {
    Bytes b = {p, n, 1};
    return b;
}

static Bytes bdup(Cmd *c, const char *p, size_t n) {
    char *q = aalloc(c, n ? n : 1);
    if (n) memcpy(q, p, n);
    return bytes(q, n);
}

/* Lua's `==` on two values each a string or nil. */
static int beq(Bytes a, Bytes b) {
    if (!a.set || !b.set) return a.set == b.set;
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

typedef struct { char *p; size_t n, cap; } Buf;

static void bput(Cmd *c, Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n) cap *= 2;
        char *p = aalloc(c, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bbyte(Cmd *c, Buf *b, unsigned v) {
    unsigned char x = (unsigned char)v;
    bput(c, b, &x, 1);
}

static Bytes bdone(Buf *b) { return bytes(b->p ? b->p : "", b->n); }

static Bytes concat(Cmd *c, Bytes a, Bytes b) {
    Buf o = {0};
    bput(c, &o, a.p, a.n);
    bput(c, &o, b.p, b.n);
    return bdone(&o);
}

/* ---------------------------------------------------------------------------------------------------------------
 * msgpack as Redis's cmsgpack writes it.
 */
static void be_put(Cmd *c, Buf *b, unsigned head, uint64_t v, int width) {
    unsigned char x[9];
    x[0] = (unsigned char)head;
    for (int i = 0; i < width; i++) x[1 + i] = (unsigned char)(v >> (8 * (width - 1 - i)));
    bput(c, b, x, 1 + width);
}

static void mp_str(Cmd *c, Buf *b, const char *s, size_t n) {
    if (n < 32) bbyte(c, b, 0xa0 | (unsigned)n);
    else if (n <= 0xff) be_put(c, b, 0xd9, n, 1);
    else if (n <= 0xffff) be_put(c, b, 0xda, n, 2);
    else be_put(c, b, 0xdb, n, 4);
    bput(c, b, s, n);
}

static void mp_int(Cmd *c, Buf *b, int64_t n) {
    if (n >= 0) {
        if (n <= 127) bbyte(c, b, (unsigned)n);
        else if (n <= 0xff) be_put(c, b, 0xcc, (uint64_t)n, 1);
        else if (n <= 0xffff) be_put(c, b, 0xcd, (uint64_t)n, 2);
        else if (n <= 0xffffffffLL) be_put(c, b, 0xce, (uint64_t)n, 4);
        else be_put(c, b, 0xcf, (uint64_t)n, 8);
    } else {
        if (n >= -32) bbyte(c, b, (unsigned)(n & 0xff));
        else if (n >= -128) be_put(c, b, 0xd0, (uint64_t)n, 1);
        else if (n >= -32768) be_put(c, b, 0xd1, (uint64_t)n, 2);
        else if (n >= -2147483648LL) be_put(c, b, 0xd2, (uint64_t)n, 4);
        else be_put(c, b, 0xd3, (uint64_t)n, 8);
    }
}

/* A Lua number: an integer where it is one (as int64), else a float32 where that is exact, else a double. */
static void mp_num(Cmd *c, Buf *b, double d) {
    if (!isinf(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (double)(int64_t)d == d) {
        mp_int(c, b, (int64_t)d);
        return;
    }
    float f = (float)d;
    if ((double)f == d) {
        uint32_t u;
        memcpy(&u, &f, 4);
        be_put(c, b, 0xca, u, 4);
    } else {
        uint64_t u;
        memcpy(&u, &d, 8);
        be_put(c, b, 0xcb, u, 8);
    }
}

static void mp_array(Cmd *c, Buf *b, size_t n) {
    if (n <= 15) bbyte(c, b, 0x90 | (unsigned)n);
    else if (n <= 0xffff) be_put(c, b, 0xdc, n, 2);
    else be_put(c, b, 0xdd, n, 4);
}

/* msgpack as Python's msgpack and cmsgpack write it, read into Lua's kinds of value. */
enum { T_NIL, T_BOOL, T_NUM, T_STR, T_ARR, T_MAP };
typedef struct { const unsigned char *p, *e; } Rd;
typedef struct { int t; double num; const char *s; size_t n; } Val;

static uint64_t be_get(const unsigned char *p, int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; i++) v = (v << 8) | p[i];
    return v;
}

static Rd reader(Bytes b) {
    Rd r = {(const unsigned char *)b.p, (const unsigned char *)b.p + b.n};
    return r;
}

/* The next value's header (an array's or map's count, not its elements); 0, or -1 for malformed input. */
static int rd(Rd *r, Val *v) {
    if (r->p >= r->e) return -1;
    unsigned t = *r->p++;
    size_t left = (size_t)(r->e - r->p);
    int width = 0;
    memset(v, 0, sizeof *v);
    if (t <= 0x7f) { v->t = T_NUM; v->num = t; return 0; }
    if (t >= 0xe0) { v->t = T_NUM; v->num = (int)t - 256; return 0; }
    if ((t & 0xf0) == 0x80) { v->t = T_MAP; v->n = t & 0x0f; goto counted; }
    if ((t & 0xf0) == 0x90) { v->t = T_ARR; v->n = t & 0x0f; goto counted; }
    if ((t & 0xe0) == 0xa0) { v->t = T_STR; v->n = t & 0x1f; goto string; }
    switch (t) {
    case 0xc0: v->t = T_NIL; return 0;
    case 0xc2: case 0xc3: v->t = T_BOOL; return 0;
    case 0xca: {
        if (left < 4) return -1;
        uint32_t u = (uint32_t)be_get(r->p, 4);
        float f;
        memcpy(&f, &u, 4);
        r->p += 4; v->t = T_NUM; v->num = f; return 0;
    }
    case 0xcb: {
        if (left < 8) return -1;
        uint64_t u = be_get(r->p, 8);
        double d;
        memcpy(&d, &u, 8);
        r->p += 8; v->t = T_NUM; v->num = d; return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        width = 1 << (t - 0xcc);
        if (left < (size_t)width) return -1;
        v->t = T_NUM; v->num = (double)be_get(r->p, width); r->p += width; return 0;
    case 0xd0: if (left < 1) return -1; v->t = T_NUM; v->num = (int8_t)r->p[0]; r->p += 1; return 0;
    case 0xd1: if (left < 2) return -1; v->t = T_NUM; v->num = (int16_t)be_get(r->p, 2); r->p += 2; return 0;
    case 0xd2: if (left < 4) return -1; v->t = T_NUM; v->num = (int32_t)be_get(r->p, 4); r->p += 4; return 0;
    case 0xd3: if (left < 8) return -1; v->t = T_NUM; v->num = (double)(int64_t)be_get(r->p, 8); r->p += 8; return 0;
    case 0xd9: case 0xda: case 0xdb:
        width = t == 0xd9 ? 1 : t == 0xda ? 2 : 4;
        if (left < (size_t)width) return -1;
        v->t = T_STR; v->n = be_get(r->p, width); r->p += width; goto string;
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        width = (t == 0xdc || t == 0xde) ? 2 : 4;
        if (left < (size_t)width) return -1;
        v->t = t <= 0xdd ? T_ARR : T_MAP; v->n = be_get(r->p, width); r->p += width; goto counted;
    default:
        return -1; /* bin, ext and the rest: nothing the callers send */
    }
string:
    if ((size_t)(r->e - r->p) < v->n) return -1;
    v->s = (const char *)r->p;
    r->p += v->n;
    return 0;
counted:
    if ((size_t)(r->e - r->p) < v->n) return -1; /* every element takes a byte at least */
    return 0;
}

static void rd_need(Cmd *c, Rd *r, Val *v, int type, const char *what) {
    static const char *names[] = {"nil", "boolean", "number", "string", "array", "map"};
    if (rd(r, v) != 0) fail(c, "ERR amity: %s: malformed msgpack", what);
    if (v->t != type) fail(c, "ERR amity: %s is a msgpack %s, not a %s", what, names[v->t], names[type]);
}

static Bytes rd_str(Cmd *c, Rd *r, const char *what) {
    Val v;
    rd_need(c, r, &v, T_STR, what);
    return bytes(v.s, v.n);
}

static double rd_num(Cmd *c, Rd *r, const char *what) {
    Val v;
    rd_need(c, r, &v, T_NUM, what);
    return v.num;
}

static size_t rd_array(Cmd *c, Rd *r, const char *what) {
    Val v;
    rd_need(c, r, &v, T_ARR, what);
    return v.n;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Vectors: Lua tables region -> counter, unpacked from msgpack maps and packed canonically (pack_vector).
 */
static Entry *vec_find(const Vec *v, const char *s, size_t n) {
    for (int i = 0; i < v->n; i++)
        if (v->e[i].n == n && (n == 0 || memcmp(v->e[i].s, s, n) == 0)) return &v->e[i];
    return NULL;
}

static void vec_set(Cmd *c, Vec *v, const char *s, size_t n, double x) {
    Entry *e = vec_find(v, s, n);
    if (e) { e->v = x; return; }
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        Entry *ne = aalloc(c, sizeof(Entry) * (size_t)cap);
        if (v->n) memcpy(ne, v->e, sizeof(Entry) * (size_t)v->n);
        v->e = ne;
        v->cap = cap;
    }
    v->e[v->n].s = s;
    v->e[v->n].n = n;
    v->e[v->n].v = x;
    v->n++;
}

/* Vectors are looked up region by region (a few regions each: amity.vectors allows 64); a larger map is refused
 * rather than searched in quadratic time. */
#define MAX_REGIONS 1024

/* unpack_vector: nil is the empty table; a msgpack map (or cmsgpack's empty table, an empty array) is a vector. */
static void vec_parse(Cmd *c, Bytes packed, Vec *out, const char *what) {
    out->n = 0;
    if (!packed.set) return;
    Rd r = reader(packed);
    Val v;
    if (rd(&r, &v) != 0) fail(c, "ERR amity: %s: malformed msgpack", what);
    if (v.t == T_ARR && v.n == 0) return;
    if (v.t != T_MAP) fail(c, "ERR amity: %s is not a msgpack map", what);
    if (v.n > MAX_REGIONS) fail(c, "ERR amity: %s names %zu regions, more than %d", what, (size_t)v.n, MAX_REGIONS);
    for (size_t i = 0; i < v.n; i++) {
        Val k, x;
        if (rd(&r, &k) != 0 || k.t != T_STR || rd(&r, &x) != 0 || x.t != T_NUM)
            fail(c, "ERR amity: %s is not a map of region names to counters", what);
        vec_set(c, out, k.s, k.n, x.num);
    }
}

/* `before`: bytewise, the shorter first on a common prefix. */
static int before(const Entry *a, const Entry *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    int d = n ? memcmp(a->s, b->s, n) : 0;
    if (d) return d < 0;
    return a->n < b->n;
}

/* pack_vector: regions sorted, fixmap or map16 header. */
static Bytes vec_pack(Cmd *c, const Vec *v) {
    int n = v->n;
    if (n >= 65536) fail(c, "ERR amity: a vector of %d regions", n);
    Entry *sorted = aalloc(c, sizeof(Entry) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) { /* insertion sort: vectors hold a few regions */
        Entry e = v->e[i];
        int j = i;
        while (j > 0 && before(&e, &sorted[j - 1])) { sorted[j] = sorted[j - 1]; j--; }
        sorted[j] = e;
    }
    Buf b = {0};
    if (n < 16) bbyte(c, &b, 0x80 | (unsigned)n);
    else be_put(c, &b, 0xde, (uint64_t)n, 2);
    for (int i = 0; i < n; i++) {
        mp_str(c, &b, sorted[i].s, sorted[i].n);
        mp_num(c, &b, sorted[i].v);
    }
    return bdone(&b);
}

/* `concurrent(a, b)` of the apply script. */
static int concurrent(const Vec *a, const Vec *b) {
    int less = 0, greater = 0;
    for (int i = 0; i < a->n; i++) {
        const Entry *y = vec_find(b, a->e[i].s, a->e[i].n);
        double yv = y ? y->v : 0, x = a->e[i].v;
        if (x < yv) less = 1;
        else if (x > yv) greater = 1;
    }
    for (int i = 0; i < b->n; i++)
        if (!vec_find(a, b->e[i].s, b->e[i].n) && b->e[i].v > 0) less = 1;
    return less && greater;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Ranks and hybrid timestamps, as the scripts compare and advance them.
 */
static double number6(const char *s, size_t len, size_t i) { /* bytes i..i+5, missing ones 0 */
    double v = 0;
    for (size_t k = i; k < i + 6; k++) v = v * 256 + (k < len ? (unsigned char)s[k] : 0);
    return v;
}

/* `gt(a, b)` exactly as the script computes it, for strings of any lengths: a bytewise comparison for equal
 * lengths; for others the script's six-byte chunks, and its error where b runs out before a. */
static int lua_gt(Cmd *c, Bytes a, Bytes b) {
    if (beq(a, b)) return 0;
    size_t from = 0;
    if (a.n >= 6 && b.n >= 6) {
        double x = number6(a.p, 6, 0), y = number6(b.p, 6, 0);
        if (x != y) return x > y;
        from = 6;
    }
    for (size_t i = from; i < a.n; i += 6) {
        if (i >= b.n) fail(c, "ERR amity: comparing hybrid timestamps of lengths %zu and %zu (the script fails here)",
                           a.n, b.n);
        double x = number6(a.p, a.n, i), y = number6(b.p, b.n, i);
        if (x != y) return x > y;
    }
    return 0;
}

/* `successor(hlc)` of the stamp script: 8 bytes, one more. */
static Bytes successor(Cmd *c, Bytes hlc) {
    if (hlc.n < 8) fail(c, "ERR amity: a stored hybrid timestamp of %zu bytes (the script fails here)", hlc.n);
    unsigned char *b = aalloc(c, 8);
    memcpy(b, hlc.p, 8);
    for (int i = 7; i >= 0; i--) {
        if (b[i] < 255) {
            b[i]++;
            return bytes((const char *)b, 8);
        }
        b[i] = 0;
    }
    fail(c, "ERR amity: hybrid timestamp overflow");
}

/* ---------------------------------------------------------------------------------------------------------------
 * Redis access, as the scripts' redis.call would do it.
 */

/* Lua 5.1's tonumber on a string (luaO_str2d): strtod, then hexadecimal, then trailing spaces; 0 when it is no
 * number. Like Lua, it reads the string as a C string (up to a NUL). */
static int lua_tonumber(Cmd *c, Bytes s, double *out) {
    if (!s.set) return 0;
    char *buf = aalloc(c, s.n + 1);
    if (s.n) memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    char *end;
    double d = strtod(buf, &end);
    if (end == buf) return 0;
    if (*end == 'x' || *end == 'X') d = (double)strtoul(buf, &end, 16);
    while (*end && isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    *out = d;
    return 1;
}

static void signal_write(Cmd *c, RedisModuleString *name, int type, const char *event) {
    m_SignalModifiedKey(c->ctx, name);
    m_NotifyKeyspaceEvent(c->ctx, type, event, name);
    c->wrote = 1;
}

static void check_hash(Cmd *c, RedisModuleKey *h) {
    int type = m_KeyType(h);
    if (type != M_KEYTYPE_EMPTY && type != M_KEYTYPE_HASH) fail(c, WRONGTYPE);
}

static void key_open(Cmd *c, KeyState *k) {
    k->hname = m_CreateString(c->ctx, k->name.p, k->name.n);
    k->h = m_OpenKey(c->ctx, k->hname, M_READ | M_WRITE);
    check_hash(c, k->h);
}

static void key_close(Cmd *c, KeyState *k) {
    if (k->h) m_CloseKey(k->h);
    if (k->hname) m_FreeString(c->ctx, k->hname);
    k->h = NULL;
    k->hname = NULL;
}

/* HMGET of up to four fields into the arena; nil for a missing field. */
static void hmget(Cmd *c, RedisModuleKey *h, int n, const char **names, Bytes **outs) {
    RedisModuleString *v[4] = {NULL, NULL, NULL, NULL};
    int rc;
    switch (n) {
    case 1: rc = m_HashGet(h, M_HASH_CFIELDS, names[0], &v[0], NULL); break;
    case 2: rc = m_HashGet(h, M_HASH_CFIELDS, names[0], &v[0], names[1], &v[1], NULL); break;
    case 3: rc = m_HashGet(h, M_HASH_CFIELDS, names[0], &v[0], names[1], &v[1], names[2], &v[2], NULL); break;
    default:
        rc = m_HashGet(h, M_HASH_CFIELDS, names[0], &v[0], names[1], &v[1], names[2], &v[2], names[3], &v[3], NULL);
    }
    for (int i = 0; i < n; i++) {
        if (v[i]) {
            size_t len;
            const char *p = m_StringPtrLen(v[i], &len);
            *outs[i] = bdup(c, p, len);
            m_FreeString(c->ctx, v[i]);
        } else {
            *outs[i] = NIL;
        }
    }
    if (rc != M_OK) fail(c, WRONGTYPE);
}

/* HSET of up to four fields; a nil value fails as redis.call fails on one, before writing anything. */
static void hset(Cmd *c, RedisModuleKey *h, RedisModuleString *name, int n, const char **names, const Bytes *vals) {
    RedisModuleString *v[4];
    for (int i = 0; i < n; i++)
        if (!vals[i].set) fail(c, "ERR amity: HSET of field '%s' to nil (the script fails here)", names[i]);
    for (int i = 0; i < n; i++) v[i] = m_CreateString(c->ctx, vals[i].p, vals[i].n);
    switch (n) {
    case 1: m_HashSet(h, M_HASH_CFIELDS, names[0], v[0], NULL); break;
    case 2: m_HashSet(h, M_HASH_CFIELDS, names[0], v[0], names[1], v[1], NULL); break;
    case 3: m_HashSet(h, M_HASH_CFIELDS, names[0], v[0], names[1], v[1], names[2], v[2], NULL); break;
    default: m_HashSet(h, M_HASH_CFIELDS, names[0], v[0], names[1], v[1], names[2], v[2], names[3], v[3], NULL);
    }
    for (int i = 0; i < n; i++) m_FreeString(c->ctx, v[i]);
    signal_write(c, name, M_NOTIFY_HASH, "hset");
}

/* PEXPIRE key ttl, ttl a Lua number: redis.call passes it as "%.17g", which PEXPIRE must read as an integer; one at
 * or below 0 deletes the key. */
static void pexpire(Cmd *c, RedisModuleKey *h, RedisModuleString *name, double ttl) {
    if (!(isfinite(ttl) && floor(ttl) == ttl && fabs(ttl) < 1e17) || (ttl == 0 && signbit(ttl)))
        fail(c, "ERR value is not an integer or out of range");
    long long ms = (long long)ttl;
    if (ms <= 0) {
        m_DeleteKey(h);
        signal_write(c, name, M_NOTIFY_GENERIC, "del");
    } else {
        m_SetExpire(h, ms);
        signal_write(c, name, M_NOTIFY_GENERIC, "expire");
    }
}

static void persist(Cmd *c, RedisModuleKey *h, RedisModuleString *name) {
    if (m_GetExpire(h) == M_NO_EXPIRE) return; /* PERSIST of a key without a ttl changes nothing */
    m_SetExpire(h, M_NO_EXPIRE);
    signal_write(c, name, M_NOTIFY_GENERIC, "persist");
}

/* expire_as_held */
static void expire_as_held(Cmd *c, KeyState *k, double ttl, Bytes first) {
    if (ttl > 0) pexpire(c, k->h, k->hname, ttl);
    else if (first.set && first.n > 0 && (unsigned char)first.p[first.n - 1] == 1) persist(c, k->h, k->hname);
}

static void free_reply(Cmd *c) {
    if (c->reply) m_FreeCallReply(c->reply);
    c->reply = NULL;
}

static RedisModuleCallReply *call(Cmd *c, const char *command, RedisModuleString *key) {
    free_reply(c);
    c->reply = m_Call(c->ctx, command, "s", key);
    if (!c->reply) fail(c, "ERR amity: %s failed", command);
    if (m_CallReplyType(c->reply) == M_REPLY_ERROR) {
        size_t len;
        const char *p = m_CallReplyStringPtr(c->reply, &len);
        fail(c, "%.*s", (int)(len < 300 ? len : 300), p ? p : "ERR");
    }
    return c->reply;
}

/* check_epoch: 0 when the epoch holds (or ARGV[1] is '', no check); else 1 and the current epoch in *current. */
static int check_epoch(Cmd *c, Bytes *current) {
    size_t len;
    const char *expected = m_StringPtrLen(c->args[0], &len);
    if (len == 0) return 0;
    if (c->numkeys < 1) fail(c, "ERR amity: no epoch key (KEYS[1])");
    RedisModuleCallReply *r = call(c, "GET", c->keys[0]);
    Bytes found = NIL;
    int type = m_CallReplyType(r);
    if (type == M_REPLY_STRING) {
        size_t n;
        const char *p = m_CallReplyStringPtr(r, &n);
        found = bdup(c, p, n);
    } else if (type != M_REPLY_NULL) {
        fail(c, "ERR amity: GET of the epoch key answered an unexpected reply");
    }
    free_reply(c);
    if (beq(found, bytes(expected, len))) return 0;
    *current = found.set ? found : bytes("", 0);
    return 1;
}

static void reply_lost(Cmd *c, Bytes current) {
    m_ReplyWithArray(c->ctx, 2);
    m_ReplyWithLongLong(c->ctx, 1);
    m_ReplyWithStringBuffer(c->ctx, current.p, current.n);
}

/* The argument of a command that is a msgpack array. */
static Bytes arg_bytes(Cmd *c, int i) {
    size_t len;
    const char *p = m_StringPtrLen(c->args[i], &len);
    return bytes(p, len);
}

/* The batch's keys, each once: KeyState slots found by name. */
typedef struct { int *slot; size_t mask; } Index;

static void index_init(Cmd *c, Index *x, size_t n) {
    size_t cap = 8;
    while (cap < 2 * n) cap *= 2;
    x->slot = azalloc(c, sizeof(int) * cap);
    x->mask = cap - 1;
    c->ks = azalloc(c, sizeof(KeyState) * (n ? n : 1));
    c->nks = 0;
}

static int index_of(Cmd *c, Index *x, Bytes name) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < name.n; i++) h = (h ^ (unsigned char)name.p[i]) * 1099511628211ULL;
    size_t at = (size_t)h & x->mask;
    while (x->slot[at]) {
        KeyState *k = &c->ks[x->slot[at] - 1];
        if (beq(k->name, name)) return x->slot[at] - 1;
        at = (at + 1) & x->mask;
    }
    KeyState *k = &c->ks[c->nks];
    k->name = name;
    x->slot[at] = ++c->nks;
    return c->nks - 1;
}

/* ---------------------------------------------------------------------------------------------------------------
 * AMITY.APPLY numkeys epoch-key expected-epoch claims: _APPLY_LUA.
 */
typedef struct { int k; Bytes rank, hlc, packed; double ttl, reads; } Claim;
typedef struct { int index; Bytes held, held_vector; } Conflict;

static void apply_write(Cmd *c, KeyState *k, int keeps, Bytes held, Bytes merged, Bytes top, Bytes held_vector,
                        int applied, double ttl, Bytes first, Bytes seen_merged, Bytes seen_top) {
    if (applied) {
        if (keeps) {
            const char *names[] = {"r", "v", "m", "h"};
            Bytes vals[] = {held, held_vector, merged.set ? merged : held_vector, top};
            hset(c, k->h, k->hname, 4, names, vals);
        } else {
            const char *names[] = {"r", "v", "h"};
            Bytes vals[] = {held, held_vector, top};
            hset(c, k->h, k->hname, 3, names, vals);
        }
        expire_as_held(c, k, ttl, first);
    } else if (keeps && (!beq(merged, seen_merged) || !beq(top, seen_top))) {
        const char *names[] = {"m", "h"};
        Bytes vals[] = {merged, top};
        hset(c, k->h, k->hname, 2, names, vals);
    } else if (!beq(top, seen_top)) {
        const char *names[] = {"h"};
        Bytes vals[] = {top};
        hset(c, k->h, k->hname, 1, names, vals);
    }
    key_close(c, k);
}

static void apply_body(Cmd *c) {
    if (c->nargs < 2) fail(c, "ERR amity: AMITY.APPLY takes numkeys epoch-key expected-epoch claims");
    Bytes current;
    if (check_epoch(c, &current)) {
        reply_lost(c, current);
        return;
    }
    Rd r = reader(arg_bytes(c, 1));
    size_t total = rd_array(c, &r, "the claims");
    if (total % 6) fail(c, "ERR amity: the claims array holds %zu fields, not six per claim", total);
    size_t n = total / 6;
    Claim *claims = aalloc(c, sizeof(Claim) * (n ? n : 1));
    Index index;
    index_init(c, &index, n);
    for (size_t i = 0; i < n; i++) {
        Claim *cl = &claims[i];
        cl->k = index_of(c, &index, rd_str(c, &r, "a claim's state hash"));
        cl->rank = rd_str(c, &r, "a claim's rank");
        cl->hlc = rd_str(c, &r, "a claim's hlc");
        cl->ttl = rd_num(c, &r, "a claim's ttl");
        cl->reads = rd_num(c, &r, "a claim's reads");
        cl->packed = rd_str(c, &r, "a claim's vector");
        c->ks[cl->k].left++;
    }
    char *codes = aalloc(c, n ? n : 1);
    Conflict *conflicts = aalloc(c, sizeof(Conflict) * (n ? n : 1));
    size_t nconflicts = 0;
    Vec vector = {0}, held_table = {0}, context = {0};
    for (size_t i = 0; i < n; i++) {
        Claim *cl = &claims[i];
        KeyState *k = &c->ks[cl->k];
        int keeps = cl->reads != 0, classify = cl->reads == 2;
        Bytes held, merged, top, held_vector, first, seen_merged, seen_top;
        int applied;
        double ttl;
        if (k->loaded) {
            held = k->held; merged = k->merged; top = k->top; held_vector = k->held_vector;
            applied = k->has_ttl; ttl = k->ttl; first = k->first;
            seen_merged = k->seen_merged; seen_top = k->seen_top;
        } else {
            key_open(c, k);
            merged = held_vector = NIL;
            if (!keeps) {
                const char *names[] = {"r", "h"};
                Bytes *outs[] = {&held, &top};
                hmget(c, k->h, 2, names, outs);
            } else if (classify) {
                const char *names[] = {"r", "m", "h", "v"};
                Bytes *outs[] = {&held, &merged, &top, &held_vector};
                hmget(c, k->h, 4, names, outs);
            } else {
                const char *names[] = {"r", "m", "h"};
                Bytes *outs[] = {&held, &merged, &top};
                hmget(c, k->h, 3, names, outs);
            }
            applied = 0;
            ttl = 0;
            first = held;
            seen_merged = merged;
            seen_top = top;
        }
        int have_vector = 0, have_held_table = 0;
        char code;
        if (!held.set) {
            code = 'A';
        } else if (held.n != cl->rank.n) {
            code = 'L';
        } else if (beq(held, cl->rank)) {
            code = 'D';
        } else {
            int wins = memcmp(cl->rank.p, held.p, held.n) > 0;
            if (classify && !beq(cl->packed, held_vector)) { /* equal vectors are not concurrent */
                vec_parse(c, cl->packed, &vector, "a claim's vector");
                vec_parse(c, held_vector, &held_table, "a held vector");
                have_vector = have_held_table = 1;
            }
            if (have_held_table && concurrent(&vector, &held_table)) {
                code = wins ? 'C' : 'X';
                conflicts[nconflicts].index = (int)i + 1;
                conflicts[nconflicts].held = held;
                conflicts[nconflicts].held_vector = held_vector.set ? held_vector : bytes("\x80", 1);
                nconflicts++;
            } else {
                code = wins ? 'A' : 'S';
            }
        }
        codes[i] = code;
        if (code != 'L') {
            if (keeps && !beq(merged, cl->packed)) {
                if (!have_vector) vec_parse(c, cl->packed, &vector, "a claim's vector");
                vec_parse(c, merged, &context, "a stored context");
                int grew = 0;
                for (int e = 0; e < vector.n; e++) {
                    Entry *known = vec_find(&context, vector.e[e].s, vector.e[e].n);
                    if ((known ? known->v : 0) < vector.e[e].v) {
                        vec_set(c, &context, vector.e[e].s, vector.e[e].n, vector.e[e].v);
                        grew = 1;
                    }
                }
                if (grew) {
                    int covered = 1;
                    for (int e = 0; e < context.n; e++) {
                        Entry *x = vec_find(&vector, context.e[e].s, context.e[e].n);
                        if ((x ? x->v : 0) < context.e[e].v) {
                            covered = 0;
                            break;
                        }
                    }
                    merged = covered ? cl->packed : vec_pack(c, &context);
                }
            }
            if (!top.set || lua_gt(c, cl->hlc, top)) top = cl->hlc;
            if (code == 'A' || code == 'C') {
                held = cl->rank;
                held_vector = cl->packed;
                applied = 1;
                ttl = cl->ttl;
            }
        }
        if (--k->left == 0) {
            apply_write(c, k, keeps, held, merged, top, held_vector, applied, ttl, first, seen_merged, seen_top);
        } else {
            k->held = held; k->merged = merged; k->top = top; k->held_vector = held_vector;
            k->has_ttl = applied; k->ttl = ttl;
            if (!k->loaded) {
                k->first = first;
                k->seen_merged = seen_merged;
                k->seen_top = seen_top;
                k->loaded = 1;
            }
        }
    }
    m_ReplyWithArray(c->ctx, (long)(2 + 3 * nconflicts));
    m_ReplyWithLongLong(c->ctx, 0);
    m_ReplyWithStringBuffer(c->ctx, codes, n);
    for (size_t i = 0; i < nconflicts; i++) {
        m_ReplyWithLongLong(c->ctx, conflicts[i].index);
        m_ReplyWithStringBuffer(c->ctx, conflicts[i].held.p, conflicts[i].held.n);
        m_ReplyWithStringBuffer(c->ctx, conflicts[i].held_vector.p, conflicts[i].held_vector.n);
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Memo hashes (_MEMOS).
 */
static double mark_of(Cmd *c, RedisModuleString *memo) {
    RedisModuleKey *h = m_OpenKey(c->ctx, memo, M_READ);
    int type = m_KeyType(h);
    if (type != M_KEYTYPE_EMPTY && type != M_KEYTYPE_HASH) {
        m_CloseKey(h);
        fail(c, WRONGTYPE);
    }
    Bytes hi = NIL;
    if (type == M_KEYTYPE_HASH) {
        const char *names[] = {"hi"};
        Bytes *outs[] = {&hi};
        RedisModuleString *v = NULL;
        m_HashGet(h, M_HASH_CFIELDS, names[0], &v, NULL);
        if (v) {
            size_t len;
            const char *p = m_StringPtrLen(v, &len);
            *outs[0] = bdup(c, p, len);
            m_FreeString(c->ctx, v);
        }
    }
    m_CloseKey(h);
    double mark;
    return lua_tonumber(c, hi, &mark) ? mark : -1;
}

typedef struct { double offset; Bytes memo; } MemoEntry;
typedef struct { MemoEntry *e; size_t n, cap; } MemoList;

static void memo_append(Cmd *c, MemoList *l, double offset, Bytes memo) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        MemoEntry *e = aalloc(c, sizeof(MemoEntry) * cap);
        if (l->n) memcpy(e, l->e, sizeof(MemoEntry) * l->n);
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n].offset = offset;
    l->e[l->n].memo = memo;
    l->n++;
}

/* offset -> memo, as a script's Lua table holds them: the entries in the order first set, and an open-addressing
 * index into them. A key set again keeps its place and takes the new memo. */
typedef struct { MemoList list; int *index; size_t mask; } MemoMap;

static size_t memo_slot(const MemoMap *m, double offset) {
    uint64_t bits;
    memcpy(&bits, &offset, sizeof bits);
    return (size_t)((bits * 0x9E3779B97F4A7C15ULL) >> 32) & m->mask;
}

static Bytes *memo_get(const MemoMap *m, double offset) {
    if (!m->index) return NULL;
    if (offset == 0) offset = 0; /* -0 and 0 are one key, as in Lua */
    for (size_t i = memo_slot(m, offset);; i = (i + 1) & m->mask) {
        if (m->index[i] < 0) return NULL;
        if (m->list.e[m->index[i]].offset == offset) return &m->list.e[m->index[i]].memo;
    }
}

static void memo_index(Cmd *c, MemoMap *m) {
    size_t size = 64;
    while (size < 2 * m->list.n) size *= 2;
    m->index = aalloc(c, sizeof(int) * size);
    for (size_t i = 0; i < size; i++) m->index[i] = -1;
    m->mask = size - 1;
    for (size_t at = 0; at < m->list.n; at++) {
        size_t i = memo_slot(m, m->list.e[at].offset);
        while (m->index[i] >= 0) i = (i + 1) & m->mask;
        m->index[i] = (int)at;
    }
}

static void memo_set(Cmd *c, MemoMap *m, double offset, Bytes memo) {
    if (isnan(offset)) fail(c, "ERR amity: table index is NaN");
    if (offset == 0) offset = 0;
    Bytes *found = memo_get(m, offset);
    if (found) {
        *found = memo;
        return;
    }
    memo_append(c, &m->list, offset, memo);
    if (!m->index || 2 * m->list.n > m->mask + 1) {
        memo_index(c, m);
        return;
    }
    size_t i = memo_slot(m, offset);
    while (m->index[i] >= 0) i = (i + 1) & m->mask;
    m->index[i] = (int)(m->list.n - 1);
}

/* memos_of: offset -> memo of every chunk of the hash, read whole. */
static void memos_of(Cmd *c, RedisModuleString *memo, MemoMap *t) {
    memset(t, 0, sizeof *t);
    RedisModuleCallReply *all = call(c, "HGETALL", memo);
    if (m_CallReplyType(all) != M_REPLY_ARRAY) fail(c, "ERR amity: HGETALL answered an unexpected reply");
    size_t n = m_CallReplyLength(all);
    for (size_t k = 0; k + 1 < n; k += 2) {
        size_t flen, vlen;
        const char *field = m_CallReplyStringPtr(m_CallReplyArrayElement(all, k), &flen);
        if (!field || flen == 0 || field[0] != 'c') continue;
        const char *value = m_CallReplyStringPtr(m_CallReplyArrayElement(all, k + 1), &vlen);
        if (!value) fail(c, "ERR amity: HGETALL answered an unexpected reply");
        Bytes chunk = bdup(c, value, vlen);
        Rd r = reader(chunk);
        size_t count = rd_array(c, &r, "a memo chunk");
        if (count % 2) fail(c, "ERR amity: a memo chunk of %zu entries, not offset and memo pairs", count);
        for (size_t e = 0; e < count; e += 2) {
            double offset = rd_num(c, &r, "a memo chunk's offset");
            memo_set(c, t, offset, rd_str(c, &r, "a memo chunk's memo"));
        }
    }
    free_reply(c);
}

static int by_offset(const void *a, const void *b) {
    double x = ((const MemoEntry *)a)->offset, y = ((const MemoEntry *)b)->offset;
    return (x > y) - (x < y);
}

/* A memo ttl: ARGV's tonumber, nil when it is none (the script then fails at its PEXPIRE). */
typedef struct { int set; double ms; } MemoTtl;

/* write_memo: the batch's memos as one chunk 'c' .. first offset, the mark, and the hash's ttl. */
static void write_memo(Cmd *c, RedisModuleString *memo, const MemoList *entries, double mark, MemoTtl ttl) {
    char hi[40], field[48];
    snprintf(hi, sizeof hi, "%.17g", mark);
    RedisModuleKey *h = m_OpenKey(c->ctx, memo, M_READ | M_WRITE);
    int type = m_KeyType(h);
    if (type != M_KEYTYPE_EMPTY && type != M_KEYTYPE_HASH) {
        m_CloseKey(h);
        fail(c, WRONGTYPE);
    }
    if (entries->n > 0) {
        Buf chunk = {0};
        mp_array(c, &chunk, 2 * entries->n);
        for (size_t i = 0; i < entries->n; i++) {
            mp_num(c, &chunk, entries->e[i].offset);
            mp_str(c, &chunk, entries->e[i].memo.p, entries->e[i].memo.n);
        }
        snprintf(field, sizeof field, "c%.14g", entries->e[0].offset);
        const char *names[] = {field, "hi"};
        Bytes vals[] = {bdone(&chunk), bytes(hi, strlen(hi))};
        hset(c, h, memo, 2, names, vals);
    } else {
        const char *names[] = {"hi"};
        Bytes vals[] = {bytes(hi, strlen(hi))};
        hset(c, h, memo, 1, names, vals);
    }
    if (!ttl.set) {
        m_CloseKey(h);
        fail(c, "ERR amity: the memo ttl is not a number (the script fails at its PEXPIRE)");
    }
    /* pexpire fails before touching the key, and the handle is closed on every way out of it */
    if (!(isfinite(ttl.ms) && floor(ttl.ms) == ttl.ms && fabs(ttl.ms) < 1e17) || (ttl.ms == 0 && signbit(ttl.ms))) {
        m_CloseKey(h);
        fail(c, "ERR value is not an integer or out of range");
    }
    pexpire(c, h, memo, ttl.ms);
    m_CloseKey(h);
}

static MemoTtl memo_ttl_arg(Cmd *c, int i) {
    MemoTtl ttl = {0, 0};
    ttl.set = lua_tonumber(c, arg_bytes(c, i), &ttl.ms);
    return ttl;
}

/* ---------------------------------------------------------------------------------------------------------------
 * AMITY.STAMP numkeys epoch-key memo-hash... expected-epoch region memo-ttl requests: _STAMP_LUA.
 */
typedef struct { int k; Bytes hlc, head, tail; double field, slot, hold, ttl; } Request;
typedef struct {
    int marked, behind;
    double mark, passed;
    MemoMap memos;
    MemoList written;
} Slot;
typedef struct { Bytes hlc, vector; int fresh; } Out;

static void stamp_write(Cmd *c, KeyState *k, Bytes merged, Bytes top, Bytes held, Bytes held_vector, int has_ttl,
                        double ttl, Bytes first) {
    if (has_ttl) {
        const char *names[] = {"r", "v", "m", "h"};
        Bytes vals[] = {held, held_vector, merged, top};
        hset(c, k->h, k->hname, 4, names, vals);
        expire_as_held(c, k, ttl, first);
    } else {
        const char *names[] = {"m", "h"};
        Bytes vals[] = {merged, top};
        hset(c, k->h, k->hname, 2, names, vals);
    }
    key_close(c, k);
}

static Bytes big_endian8(Cmd *c, double n) {
    unsigned char *b = aalloc(c, 8);
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(int)(n - floor(n / 256) * 256);
        n = floor(n / 256);
    }
    return bytes((const char *)b, 8);
}

static Bytes rank_of(Cmd *c, double hold, Bytes head, Bytes hlc, Bytes tail, const Vec *context) {
    if (hold == 2) {
        Buf b = {0};
        bput(c, &b, "\0\0", 2);
        bput(c, &b, hlc.p, hlc.n < 6 ? hlc.n : 6);
        head = bdone(&b);
    }
    if (hold == 3) {
        double depth = 0;
        for (int i = 0; i < context->n; i++) depth += context->e[i].v;
        head = concat(c, big_endian8(c, depth), head);
    }
    Buf b = {0};
    bput(c, &b, head.p, head.n);
    bput(c, &b, hlc.p, hlc.n);
    bput(c, &b, tail.p, tail.n);
    return bdone(&b);
}

/* canonical(packed): empty and one-region maps as they are, others packed again. */
static Bytes canonical(Cmd *c, Bytes packed) {
    if (packed.n > 0 && ((unsigned char)packed.p[0] == 0x80 || (unsigned char)packed.p[0] == 0x81)) return packed;
    Vec v = {0};
    vec_parse(c, packed, &v, "a memoised vector");
    return vec_pack(c, &v);
}

#define MAX_COUNTER 281474976710655.0 /* 2^48 - 1, amity.vectors.MAX_COUNTER */

static void stamp_body(Cmd *c) {
    if (c->nargs < 4) fail(c, "ERR amity: AMITY.STAMP takes numkeys epoch-key memo-hash... expected-epoch region "
                              "memo-ttl requests");
    Bytes current;
    if (check_epoch(c, &current)) {
        reply_lost(c, current);
        return;
    }
    Bytes region = arg_bytes(c, 1);
    MemoTtl memo_ttl = memo_ttl_arg(c, 2);
    Rd r = reader(arg_bytes(c, 3));
    size_t total = rd_array(c, &r, "the requests");
    if (total % 8) fail(c, "ERR amity: the requests array holds %zu fields, not eight per request", total);
    size_t n = total / 8;
    Request *reqs = aalloc(c, sizeof(Request) * (n ? n : 1));
    Index index;
    index_init(c, &index, n);
    for (size_t i = 0; i < n; i++) {
        Request *q = &reqs[i];
        q->k = index_of(c, &index, rd_str(c, &r, "a request's state hash"));
        q->hlc = rd_str(c, &r, "a request's floor hlc");
        q->field = rd_num(c, &r, "a request's source offset");
        q->slot = rd_num(c, &r, "a request's memo slot");
        q->hold = rd_num(c, &r, "a request's hold");
        q->head = rd_str(c, &r, "a request's rank head");
        q->tail = rd_str(c, &r, "a request's rank tail");
        q->ttl = rd_num(c, &r, "a request's ttl");
        c->ks[q->k].left++;
        if (q->field >= 0 && !(q->slot >= 1 && q->slot <= c->numkeys - 1 && floor(q->slot) == q->slot))
            fail(c, "ERR amity: memo slot %.17g is not one of the %d memo hashes", q->slot, c->numkeys - 1);
    }
    /* read_memos: each memo hash's mark, and the hash read whole where a request is at or below it */
    int nslots = c->numkeys > 1 ? c->numkeys - 1 : 0;
    Slot *slots = azalloc(c, sizeof(Slot) * (size_t)(nslots + 1));
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].field < 0) continue;
        Slot *s = &slots[(int)reqs[i].slot];
        if (!s->marked) {
            s->mark = mark_of(c, c->keys[(int)reqs[i].slot]);
            s->marked = 1;
        }
        if (reqs[i].field <= s->mark) s->behind = 1;
    }
    for (int j = 1; j <= nslots; j++) {
        Slot *s = &slots[j];
        if (!s->marked) continue;
        if (s->behind) memos_of(c, c->keys[j], &s->memos);
        else memset(&s->memos, 0, sizeof s->memos);
        s->passed = s->mark;
    }
    Out *out = aalloc(c, sizeof(Out) * (n ? n : 1));
    Bytes first_stamp; /* pack_vector({[region] = 1}) */
    {
        Buf b = {0};
        bbyte(c, &b, 0x81);
        mp_str(c, &b, region.p, region.n);
        bbyte(c, &b, 1);
        first_stamp = bdone(&b);
    }
    for (size_t i = 0; i < n; i++) {
        Request *q = &reqs[i];
        KeyState *k = &c->ks[q->k];
        int last = --k->left == 0;
        int waiting = k->loaded, written_now = 0;
        Slot *s = q->field >= 0 ? &slots[(int)q->slot] : NULL;
        Bytes known = NIL;
        if (s) {
            Bytes *found = memo_get(&s->memos, q->field);
            if (found) known = *found;
        }
        if (known.set && known.n == 0) { /* a refusal */
            out[i].hlc = out[i].vector = bytes("", 0);
            out[i].fresh = 0;
        } else if (known.set) {
            out[i].hlc = bytes(known.p, known.n < 8 ? known.n : 8);
            out[i].vector = canonical(c, known.n > 8 ? bytes(known.p + 8, known.n - 8) : bytes("", 0));
            out[i].fresh = 0;
        } else if (s && q->field <= s->passed) { /* passed unmemoised: stamped from its timestamp (first-hops) */
            out[i].hlc = q->hlc;
            out[i].vector = first_stamp;
            out[i].fresh = 0;
        } else if (q->hold < 0) {
            if (!s) fail(c, "ERR amity: request %zu asks to memoise a refusal but names no source record", i + 1);
            memo_set(c, &s->memos, q->field, bytes("", 0));
            memo_append(c, &s->written, q->field, bytes("", 0));
            if (q->field > s->mark) s->mark = q->field;
            out[i].hlc = out[i].vector = bytes("", 0);
            out[i].fresh = 1;
        } else {
            Bytes merged, top, held, held_vector, first;
            int has_ttl;
            double ttl;
            if (waiting) {
                merged = k->merged; top = k->top; held = k->held; held_vector = k->held_vector;
                has_ttl = k->has_ttl; ttl = k->ttl; first = k->first;
            } else {
                key_open(c, k);
                const char *names[] = {"m", "h", "r"};
                Bytes *outs[] = {&merged, &top, &held};
                hmget(c, k->h, 3, names, outs);
                held_vector = NIL;
                has_ttl = 0;
                ttl = 0;
                first = held;
                vec_parse(c, merged, &k->context, "a stored context");
            }
            Bytes hlc = q->hlc;
            if (top.set && !lua_gt(c, hlc, top)) hlc = successor(c, top);
            Entry *mine = vec_find(&k->context, region.p, region.n);
            double counter = (mine ? mine->v : 0) + 1;
            if (MAX_COUNTER < counter) counter = MAX_COUNTER;
            vec_set(c, &k->context, region.p, region.n, counter);
            Bytes vector = vec_pack(c, &k->context);
            if (q->hold > 0) {
                Bytes rank = rank_of(c, q->hold, q->head, hlc, q->tail, &k->context);
                if (!held.set || (held.n == rank.n && memcmp(rank.p, held.p, rank.n) > 0)) {
                    held = rank;
                    held_vector = vector;
                    has_ttl = 1;
                    ttl = q->ttl;
                }
            }
            if (last) {
                stamp_write(c, k, vector, hlc, held, held_vector, has_ttl, ttl, first);
                written_now = 1;
            } else {
                k->merged = vector; k->top = hlc; k->held = held; k->held_vector = held_vector;
                k->has_ttl = has_ttl; k->ttl = ttl;
                if (!waiting) {
                    k->first = first;
                    k->loaded = 1;
                }
            }
            if (s) {
                Bytes stamp = concat(c, hlc, vector);
                memo_set(c, &s->memos, q->field, stamp);
                memo_append(c, &s->written, q->field, stamp);
                if (q->field > s->mark) s->mark = q->field;
            }
            out[i].hlc = hlc;
            out[i].vector = vector;
            out[i].fresh = 1;
        }
        if (last && waiting && !written_now) /* the key's last request took no stamp of its own */
            stamp_write(c, k, k->merged, k->top, k->held, k->held_vector, k->has_ttl, k->ttl, k->first);
    }
    for (int j = 1; j <= nslots; j++)
        if (slots[j].written.n) write_memo(c, c->keys[j], &slots[j].written, slots[j].mark, memo_ttl);
    m_ReplyWithArray(c->ctx, (long)(1 + 3 * n));
    m_ReplyWithLongLong(c->ctx, 0);
    for (size_t i = 0; i < n; i++) {
        m_ReplyWithStringBuffer(c->ctx, out[i].hlc.p, out[i].hlc.n);
        m_ReplyWithStringBuffer(c->ctx, out[i].vector.p, out[i].vector.n);
        m_ReplyWithLongLong(c->ctx, out[i].fresh);
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * AMITY.FIRSTHOPS numkeys epoch-key memo-hash... expected-epoch memo-ttl hashes: _FIRST_HOPS_LUA.
 */
typedef struct { double first, last, *refused; size_t nrefused; double mark; MemoList decided; } Hop;

static void first_hops_body(Cmd *c) {
    if (c->nargs < 3) fail(c, "ERR amity: AMITY.FIRSTHOPS takes numkeys epoch-key memo-hash... expected-epoch "
                              "memo-ttl hashes");
    Bytes current;
    if (check_epoch(c, &current)) {
        reply_lost(c, current);
        return;
    }
    MemoTtl memo_ttl = memo_ttl_arg(c, 1);
    Rd r = reader(arg_bytes(c, 2));
    size_t total = rd_array(c, &r, "the memo hashes' fields");
    if (total % 3) fail(c, "ERR amity: the memo hashes' array holds %zu fields, not three per hash", total);
    size_t m = total / 3;
    Hop *hops = azalloc(c, sizeof(Hop) * (m ? m : 1));
    for (size_t j = 0; j < m; j++) {
        hops[j].first = rd_num(c, &r, "a memo hash's first offset");
        hops[j].last = rd_num(c, &r, "a memo hash's last offset");
        hops[j].nrefused = rd_array(c, &r, "a memo hash's refused offsets");
        hops[j].refused = aalloc(c, sizeof(double) * (hops[j].nrefused ? hops[j].nrefused : 1));
        for (size_t e = 0; e < hops[j].nrefused; e++) hops[j].refused[e] = rd_num(c, &r, "a refused offset");
    }
    for (size_t j = 0; j < m; j++) {
        Hop *hop = &hops[j];
        if ((size_t)c->numkeys < j + 2) fail(c, "ERR amity: no KEYS[%zu] for memo hash %zu", j + 2, j + 1);
        RedisModuleString *memo = c->keys[j + 1];
        double mark = mark_of(c, memo);
        hop->mark = mark;
        if (hop->first <= mark) {
            MemoMap memos;
            memos_of(c, memo, &memos);
            for (size_t e = 0; e < memos.list.n; e++) {
                MemoEntry *entry = &memos.list.e[e];
                if (entry->offset >= hop->first && entry->offset <= hop->last)
                    memo_append(c, &hop->decided, entry->offset, entry->memo);
            }
            if (hop->decided.n) qsort(hop->decided.e, hop->decided.n, sizeof(MemoEntry), by_offset);
        }
        MemoList entries = {0};
        for (size_t e = 0; e < hop->nrefused; e++)
            if (hop->refused[e] > mark) memo_append(c, &entries, hop->refused[e], bytes("", 0));
        if (hop->last > mark) write_memo(c, memo, &entries, hop->last, memo_ttl);
    }
    m_ReplyWithArray(c->ctx, (long)(1 + 2 * m));
    m_ReplyWithLongLong(c->ctx, 0);
    for (size_t j = 0; j < m; j++) {
        m_ReplyWithLongLong(c->ctx, (long long)hops[j].mark);
        m_ReplyWithArray(c->ctx, (long)(2 * hops[j].decided.n));
        for (size_t e = 0; e < hops[j].decided.n; e++) {
            m_ReplyWithLongLong(c->ctx, (long long)hops[j].decided.e[e].offset);
            m_ReplyWithStringBuffer(c->ctx, hops[j].decided.e[e].memo.p, hops[j].decided.e[e].memo.n);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Entry points.
 */
static int parse_numkeys(RedisModuleString *arg, long long *out) {
    size_t len;
    const char *p = m_StringPtrLen(arg, &len);
    if (len == 0 || len > 18) return 0;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, void (*body)(Cmd *)) {
    if (argc < 2) return m_WrongArity(ctx);
    long long numkeys;
    if (!parse_numkeys(argv[1], &numkeys)) return m_ReplyWithError(ctx, "ERR amity: numkeys is not an integer >= 0");
    if (numkeys > argc - 2) return m_ReplyWithError(ctx, "ERR Number of keys can't be greater than number of args");
    Cmd *c = m_Alloc(sizeof(Cmd));
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->keys = argv + 2;
    c->numkeys = (int)numkeys;
    c->args = argv + 2 + numkeys;
    c->nargs = argc - 2 - (int)numkeys;
    int failed = setjmp(c->jb);
    if (!failed) body(c);
    free_reply(c);
    for (int i = 0; i < c->nks; i++) key_close(c, &c->ks[i]);
    if (c->wrote) m_ReplicateVerbatim(ctx);
    if (failed) m_ReplyWithError(ctx, c->err);
    while (c->arena) {
        Block *next = c->arena->next;
        arena_free(c->arena);
        c->arena = next;
    }
    m_Free(c);
    return M_OK;
}

static int apply_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return run(ctx, argv, argc, apply_body);
}

static int stamp_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return run(ctx, argv, argc, stamp_body);
}

static int first_hops_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return run(ctx, argv, argc, first_hops_body);
}

#define API(name) \
    if (m_GetApi("RedisModule_" #name, (void *)&m_##name) != M_OK) return M_ERR

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    m_GetApi = (int (*)(const char *, void *))((void **)ctx)[0];
    API(CreateCommand); API(SetModuleAttribs); API(SetModuleOptions);
    API(OpenKey); API(CloseKey); API(KeyType); API(HashGet); API(HashSet);
    API(SetExpire); API(GetExpire); API(DeleteKey);
    API(CreateString); API(FreeString); API(StringPtrLen);
    API(Call); API(CallReplyType); API(CallReplyLength); API(CallReplyArrayElement); API(CallReplyStringPtr);
    API(FreeCallReply);
    API(ReplyWithArray); API(ReplyWithLongLong); API(ReplyWithStringBuffer); API(ReplyWithError); API(WrongArity);
    API(ReplicateVerbatim); API(SignalModifiedKey); API(NotifyKeyspaceEvent);
    API(Alloc); API(Free);
    m_SetModuleAttribs(ctx, "amitystate", 1, 1);
    /* keys are signalled as modified where a write happens, as HSET/PEXPIRE/PERSIST do: not every key opened */
    m_SetModuleOptions(ctx, M_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED);
    if (m_CreateCommand(ctx, "amity.apply", apply_command, "write deny-oom", 0, 0, 0) != M_OK) return M_ERR;
    if (m_CreateCommand(ctx, "amity.stamp", stamp_command, "write deny-oom", 0, 0, 0) != M_OK) return M_ERR;
    if (m_CreateCommand(ctx, "amity.firsthops", first_hops_command, "write deny-oom", 0, 0, 0) != M_OK) return M_ERR;
    return M_OK;
}
