/* Native gzip-member inflate (and deflate) for pystargz.
 *
 * An eStargz blob is a run of gzip members and the TOC records where each
 * chunk's member starts and how long the chunk is, so reading a chunk is:
 * inflate whole members from that offset, check each trailer, and copy the
 * requested window.  This file does exactly that, on caller-owned buffers,
 * with every bound checked here: Python hands in lengths it read from
 * untrusted blobs.  Writing is the reverse: each piece of a layer becomes one
 * independent gzip member, so pieces compress on all cores and the blob's
 * bytes do not depend on how the pieces were spread over threads.
 *
 * Built against libdeflate (PSGZ_USE_LIBDEFLATE) or zlib; both behave the
 * same towards the caller, down to the status codes.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_inflate.h"

#ifdef PSGZ_USE_LIBDEFLATE
#include <libdeflate.h>
#else
#include <zlib.h>
#endif

#define GZ_HEADER_MIN 10
#define GZ_TRAILER 8
#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10
#define GZ_FRESERVED 0xE0

static uint32_t read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void write_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)(v >> 24);
}

/* ---- backend: the only part that differs between libdeflate and zlib ---- */

#ifdef PSGZ_USE_LIBDEFLATE

typedef struct libdeflate_decompressor *inflater;

static inflater inflater_new(void) { return libdeflate_alloc_decompressor(); }
static void inflater_free(inflater d) { libdeflate_free_decompressor(d); }

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    return libdeflate_crc32(0, p, n);
}

/* Inflates one raw deflate stream; reports the bytes it consumed and made. */
static int inflate_raw(inflater d, const unsigned char *in, size_t in_len,
                       unsigned char *out, size_t cap, size_t *in_used, size_t *out_used)
{
    enum libdeflate_result r = libdeflate_deflate_decompress_ex(d, in, in_len, out, cap, in_used, out_used);
    if (r == LIBDEFLATE_SUCCESS)
        return PSGZ_OK;
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return PSGZ_ERR_OUTPUT_TOO_SMALL;
    return PSGZ_ERR_DATA;
}

/* libdeflate's levels go past zlib's 9: 10..12 search harder, much more slowly. */
#define DEFLATE_MAX_LEVEL 12
/* Past this, libdeflate's bound arithmetic could wrap. */
#define DEFLATE_MAX_INPUT (SIZE_MAX / 2)

typedef struct libdeflate_compressor *deflater;

static deflater deflater_new(int level) { return libdeflate_alloc_compressor(level); }
static void deflater_free(deflater c) { libdeflate_free_compressor(c); }

/* With no compressor, libdeflate gives the bound for every level it has. */
static size_t deflate_bound(size_t n) { return libdeflate_deflate_compress_bound(NULL, n); }

/* Deflates one whole buffer into one raw deflate stream. */
static int deflate_raw(deflater c, const unsigned char *in, size_t in_len,
                       unsigned char *out, size_t cap, size_t *out_used)
{
    size_t n = libdeflate_deflate_compress(c, in, in_len, out, cap);
    if (n == 0) /* a deflate stream is never empty: 0 means "does not fit" */
        return PSGZ_ERR_OUTPUT_TOO_SMALL;
    *out_used = n;
    return PSGZ_OK;
}

#else /* zlib */

typedef z_stream *inflater;

static inflater inflater_new(void)
{
    z_stream *z = (z_stream *)calloc(1, sizeof(z_stream));
    if (z == NULL)
        return NULL;
    if (inflateInit2(z, -MAX_WBITS) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

static void inflater_free(inflater z)
{
    inflateEnd(z);
    free(z);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt step = n > (size_t)UINT_MAX ? UINT_MAX : (uInt)n;
        crc = crc32(crc, p, step);
        p += step;
        n -= step;
    }
    return (uint32_t)crc;
}

/* zlib's avail_in / avail_out are unsigned int: feed size_t spans in steps. */
static void feed(z_stream *z, const unsigned char *in, size_t in_len, size_t *in_pos,
                 unsigned char *out, size_t cap, size_t *out_pos)
{
    size_t in_left = in_len - *in_pos, out_left = cap - *out_pos;
    z->next_in = (Bytef *)(in + *in_pos);
    z->avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
    z->next_out = out + *out_pos;
    z->avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
}

static int inflate_raw(inflater z, const unsigned char *in, size_t in_len,
                       unsigned char *out, size_t cap, size_t *in_used, size_t *out_used)
{
    size_t in_pos = 0, out_pos = 0;
    if (inflateReset(z) != Z_OK)
        return PSGZ_ERR_NOMEM;
    for (;;) {
        feed(z, in, in_len, &in_pos, out, cap, &out_pos);
        uInt in_before = z->avail_in, out_before = z->avail_out;
        int r = inflate(z, Z_NO_FLUSH);
        in_pos += in_before - z->avail_in;
        out_pos += out_before - z->avail_out;
        if (r == Z_STREAM_END) {
            *in_used = in_pos;
            *out_used = out_pos;
            return PSGZ_OK;
        }
        if (r == Z_MEM_ERROR)
            return PSGZ_ERR_NOMEM;
        if (r != Z_OK && r != Z_BUF_ERROR)
            return PSGZ_ERR_DATA;
        if (out_pos == cap) {
            /* Full: one probe byte tells "needs more room" from "input
             * ends here", as libdeflate tells them apart. */
            unsigned char probe;
            z->next_out = &probe;
            z->avail_out = 1;
            z->next_in = (Bytef *)(in + in_pos);
            z->avail_in = (in_len - in_pos) > UINT_MAX ? UINT_MAX : (uInt)(in_len - in_pos);
            in_before = z->avail_in;
            r = inflate(z, Z_NO_FLUSH);
            in_pos += in_before - z->avail_in;
            if (r == Z_STREAM_END && z->avail_out == 1) {
                *in_used = in_pos;
                *out_used = out_pos;
                return PSGZ_OK;
            }
            if (z->avail_out == 0)
                return PSGZ_ERR_OUTPUT_TOO_SMALL;
            return r == Z_MEM_ERROR ? PSGZ_ERR_NOMEM : PSGZ_ERR_DATA;
        }
        if (in_pos == in_len || (r == Z_BUF_ERROR && in_before == z->avail_in))
            return PSGZ_ERR_DATA; /* the stream ends before its final block */
    }
}

#define DEFLATE_MAX_LEVEL 9
/* deflateBound takes and returns uLong: past this, its arithmetic could wrap. */
#define DEFLATE_MAX_INPUT ((ULONG_MAX < SIZE_MAX ? (size_t)ULONG_MAX : SIZE_MAX) / 2)

typedef z_stream *deflater;

/* Raw deflate (no zlib wrapper), a 32 KiB window, memLevel 8, the default
 * strategy: what zlib's own gzip writer and Python's gzip module use. */
static deflater deflater_new(int level)
{
    z_stream *z = (z_stream *)calloc(1, sizeof(z_stream));
    if (z == NULL)
        return NULL;
    if (deflateInit2(z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

static void deflater_free(deflater z)
{
    deflateEnd(z);
    free(z);
}

/* Without a stream, deflateBound gives the bound for every level and memLevel. */
static size_t deflate_bound(size_t n) { return (size_t)deflateBound(Z_NULL, (uLong)n); }

static int deflate_raw(deflater z, const unsigned char *in, size_t in_len,
                       unsigned char *out, size_t cap, size_t *out_used)
{
    size_t in_pos = 0, out_pos = 0;
    if (deflateReset(z) != Z_OK)
        return PSGZ_ERR_NOMEM;
    for (;;) {
        feed(z, in, in_len, &in_pos, out, cap, &out_pos);
        /* Z_FINISH only once the rest of the input fits in avail_in. */
        int flush = in_len - in_pos <= UINT_MAX ? Z_FINISH : Z_NO_FLUSH;
        uInt in_before = z->avail_in, out_before = z->avail_out;
        int r = deflate(z, flush);
        in_pos += in_before - z->avail_in;
        out_pos += out_before - z->avail_out;
        if (r == Z_STREAM_END) {
            *out_used = out_pos;
            return PSGZ_OK;
        }
        if (r == Z_MEM_ERROR)
            return PSGZ_ERR_NOMEM;
        if (r != Z_OK && r != Z_BUF_ERROR)
            return PSGZ_ERR_ARGS; /* Z_STREAM_ERROR: the stream state is not one set up here */
        if (out_pos == cap)
            return PSGZ_ERR_OUTPUT_TOO_SMALL;
        if (in_before == z->avail_in && out_before == z->avail_out)
            return PSGZ_ERR_ARGS; /* no progress with room on both sides: never loop forever */
    }
}

#endif

/* ---- gzip framing, shared by both backends ---- */

/* Checks one RFC 1952 member header and measures it. */
static int parse_header(const unsigned char *in, size_t len, size_t *header_len)
{
    size_t pos = GZ_HEADER_MIN;
    if (len < GZ_HEADER_MIN)
        return PSGZ_ERR_TRUNCATED;
    if (in[0] != 0x1f || in[1] != 0x8b || in[2] != 8 || (in[3] & GZ_FRESERVED) != 0)
        return PSGZ_ERR_HEADER;
    unsigned flags = in[3];
    if (flags & GZ_FEXTRA) {
        if (len - pos < 2)
            return PSGZ_ERR_TRUNCATED;
        size_t xlen = (size_t)in[pos] | ((size_t)in[pos + 1] << 8);
        pos += 2;
        if (len - pos < xlen)
            return PSGZ_ERR_TRUNCATED;
        pos += xlen;
    }
    for (unsigned field = GZ_FNAME; field <= GZ_FCOMMENT; field <<= 1) {
        if (!(flags & field))
            continue;
        const unsigned char *nul = memchr(in + pos, 0, len - pos);
        if (nul == NULL)
            return PSGZ_ERR_TRUNCATED;
        pos = (size_t)(nul - in) + 1;
    }
    if (flags & GZ_FHCRC) {
        if (len - pos < 2)
            return PSGZ_ERR_TRUNCATED;
        uint32_t want = (uint32_t)in[pos] | ((uint32_t)in[pos + 1] << 8);
        if ((crc32_of(in, pos) & 0xffffu) != want)
            return PSGZ_ERR_HEADER;
        pos += 2;
    }
    *header_len = pos;
    return PSGZ_OK;
}

/* A next scratch size worth trying: the ISIZE of a member that ends where
 * the input ends (the usual case: the caller passes one member's span), or
 * twice the current size. */
static size_t scratch_hint(const unsigned char *in, size_t in_len, size_t cap)
{
    size_t doubled = cap > SIZE_MAX / 2 ? SIZE_MAX : (cap < 4096 ? 8192 : cap * 2);
    if (in_len >= GZ_TRAILER) {
        size_t isize = read_le32(in + in_len - 4);
        if (isize > cap)
            return isize;
    }
    return doubled;
}

/* Copies the part of one member's output that falls inside the request. */
static void copy_window(const psgz_job *job, size_t member_start, const unsigned char *data, size_t n)
{
    size_t want_end = job->skip + job->dst_len;
    size_t lo = member_start > job->skip ? member_start : job->skip;
    size_t hi = n > want_end - member_start ? want_end : member_start + n;
    if (lo < hi)
        memcpy(job->dst + (lo - job->skip), data + (lo - member_start), hi - lo);
}

/* Inflates the member at the start of `member` into out[0..cap) and checks
 * its trailer; reports the member's compressed length and its output size. */
static int inflate_member(inflater inf, const unsigned char *member, size_t left,
                          unsigned char *out, size_t cap, size_t *consumed, size_t *n)
{
    size_t header_len, used;
    int st = parse_header(member, left, &header_len);
    if (st != PSGZ_OK)
        return st;
    st = inflate_raw(inf, member + header_len, left - header_len, out, cap, &used, n);
    if (st != PSGZ_OK)
        return st;
    if (left - header_len - used < GZ_TRAILER)
        return PSGZ_ERR_TRUNCATED;
    const unsigned char *trailer = member + header_len + used;
    if (read_le32(trailer) != crc32_of(out, *n))
        return PSGZ_ERR_CRC;
    if (read_le32(trailer + 4) != (uint32_t)*n)
        return PSGZ_ERR_LENGTH;
    *consumed = header_len + used + GZ_TRAILER;
    return PSGZ_OK;
}

/* The common case, without the copy through scratch: the request starts at the
 * first member's first byte, that member holds all of it, and dst has room
 * (dst_cap) for the whole member.  Returns PSGZ_ERR_OUTPUT_TOO_SMALL when the
 * general path must run instead (the member overflows dst, or ends early). */
static int run_in_place(psgz_job *job, inflater inf)
{
    size_t consumed, n;
    int st = inflate_member(inf, job->src, job->src_len, job->dst, job->dst_cap, &consumed, &n);
    if (st == PSGZ_OK && n < job->dst_len)
        return PSGZ_ERR_OUTPUT_TOO_SMALL;
    if (st == PSGZ_OK)
        job->src_used = consumed;
    return st;
}

static int run_job(psgz_job *job, inflater inf, unsigned char *scratch, size_t cap)
{
    size_t pos = 0, produced = 0;
    job->src_used = 0;
    job->error_offset = 0;
    job->needed_scratch = 0;
    if ((job->src == NULL && job->src_len) || (job->dst == NULL && job->dst_len) ||
        job->skip > SIZE_MAX - job->dst_len || (scratch == NULL && cap) ||
        (job->dst_cap != 0 && job->dst_cap < job->dst_len))
        return PSGZ_ERR_ARGS;
    if (job->skip == 0 && job->dst_len > 0 && job->dst_cap > 0 && job->src_len > 0) {
        int st = run_in_place(job, inf);
        if (st != PSGZ_ERR_OUTPUT_TOO_SMALL)
            return st;
    }
    size_t want_end = job->skip + job->dst_len;
    while (produced < want_end) {
        size_t left = job->src_len - pos, consumed, n;
        job->error_offset = pos;
        if (left == 0)
            return PSGZ_ERR_SHORT;
        int st = inflate_member(inf, job->src + pos, left, scratch, cap, &consumed, &n);
        if (st == PSGZ_ERR_OUTPUT_TOO_SMALL)
            job->needed_scratch = scratch_hint(job->src + pos, left, cap);
        if (st != PSGZ_OK)
            return st;
        copy_window(job, produced, scratch, n);
        produced = n > SIZE_MAX - produced ? SIZE_MAX : produced + n;
        pos += consumed;
    }
    job->src_used = pos;
    return PSGZ_OK;
}

/* ---- gzip member writer, shared by both backends ---- */

/* Header bytes 0..7: magic, CM 8 (deflate), no flags, MTIME 0.  XFL and OS follow. */
static const unsigned char GZ_HEADER_START[8] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00};
#define GZ_OS_UNKNOWN 0xff
#define GZ_XFL_SLOWEST 2
#define GZ_XFL_FASTEST 4

/* RFC 1952's "compressor used maximum compression / fastest algorithm". */
static unsigned char gzip_xfl(int level)
{
    if (level >= 9)
        return GZ_XFL_SLOWEST;
    return level <= 1 ? GZ_XFL_FASTEST : 0;
}

static int write_member(psgz_gzip_job *job, deflater d, int level)
{
    static const unsigned char nothing[1] = {0}; /* a valid pointer for empty input */
    size_t body;
    if ((job->src == NULL && job->src_len) || (job->dst == NULL && job->dst_cap))
        return PSGZ_ERR_ARGS;
    if (job->dst_cap < GZ_HEADER_MIN + GZ_TRAILER)
        return PSGZ_ERR_OUTPUT_TOO_SMALL;
    const unsigned char *src = job->src_len ? job->src : nothing;
    unsigned char *dst = job->dst;
    memcpy(dst, GZ_HEADER_START, sizeof GZ_HEADER_START);
    dst[8] = gzip_xfl(level);
    dst[9] = GZ_OS_UNKNOWN;
    int st = deflate_raw(d, src, job->src_len, dst + GZ_HEADER_MIN,
                         job->dst_cap - GZ_HEADER_MIN - GZ_TRAILER, &body);
    if (st != PSGZ_OK)
        return st;
    uint32_t crc = crc32_of(src, job->src_len);
    unsigned char *trailer = dst + GZ_HEADER_MIN + body;
    write_le32(trailer, crc);
    write_le32(trailer + 4, (uint32_t)job->src_len); /* ISIZE: the length mod 2^32 */
    job->crc32 = crc;
    job->dst_len = GZ_HEADER_MIN + body + GZ_TRAILER;
    return PSGZ_OK;
}

size_t psgz_gzip_bound(size_t src_len)
{
    if (src_len > DEFLATE_MAX_INPUT)
        return 0;
    return GZ_HEADER_MIN + deflate_bound(src_len) + GZ_TRAILER;
}

int psgz_gzip_max_level(void)
{
    return DEFLATE_MAX_LEVEL;
}

size_t psgz_gzip_batch(psgz_gzip_job *jobs, size_t n, int level)
{
    size_t failed = 0;
    if (jobs == NULL)
        return n;
    int level_ok = level >= 0 && level <= DEFLATE_MAX_LEVEL;
    deflater d = level_ok && n > 0 ? deflater_new(level) : NULL;
    for (size_t i = 0; i < n; i++) {
        psgz_gzip_job *job = &jobs[i];
        job->dst_len = 0;
        job->crc32 = 0;
        if (!level_ok)
            job->status = PSGZ_ERR_ARGS;
        else
            job->status = d == NULL ? PSGZ_ERR_NOMEM : write_member(job, d, level);
        failed += job->status != PSGZ_OK;
    }
    if (d != NULL)
        deflater_free(d);
    return failed;
}

int psgz_extract(psgz_job *job, unsigned char *scratch, size_t scratch_cap)
{
    return psgz_extract_batch(job, 1, scratch, scratch_cap) == 0 ? PSGZ_OK : job->status;
}

size_t psgz_extract_batch(psgz_job *jobs, size_t n, unsigned char *scratch, size_t scratch_cap)
{
    size_t failed = 0;
    if (jobs == NULL)
        return n;
    inflater inf = inflater_new();
    for (size_t i = 0; i < n; i++) {
        jobs[i].status = inf == NULL ? PSGZ_ERR_NOMEM : run_job(&jobs[i], inf, scratch, scratch_cap);
        failed += jobs[i].status != PSGZ_OK;
    }
    if (inf != NULL)
        inflater_free(inf);
    return failed;
}

const char *psgz_backend(void)
{
#ifdef PSGZ_USE_LIBDEFLATE
    return "libdeflate";
#else
    return "zlib";
#endif
}
