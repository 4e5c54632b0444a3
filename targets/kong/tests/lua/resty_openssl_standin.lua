-- A STAND-IN for the parts of lua-resty-openssl (bundled with Kong) that
-- gatefold's jwt chunk calls, NOT lua-resty-openssl: `resty.openssl.hmac`
-- (`new(key, "sha256")`, `:final(msg)`) and `resty.openssl.pkey`
-- (`new(pem, { format = "PEM", type = "pu" })`, `:get_key_type().id`,
-- `:get_parameters()` with RSA's `n:to_binary()` and EC's `group` NID,
-- `:verify(sig, msg, "sha256", nil, { ecdsa_use_raw = true })`), with the
-- signatures and answers those functions have in lua-resty-openssl 1.x,
-- computed by OpenSSL's libcrypto through LuaJIT's FFI as the NGINX
-- target's tests do. Also a signer, for the tests to make tokens.
local ffi = require "ffi"

ffi.cdef [[
typedef struct evp_md_st SI_EVP_MD;
typedef struct evp_md_ctx_st SI_EVP_MD_CTX;
typedef struct evp_pkey_st SI_EVP_PKEY;
typedef struct bio_st SI_BIO;
typedef struct bignum_st SI_BIGNUM;
const SI_EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const SI_EVP_MD *md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *out,
                    unsigned int *out_len);
SI_BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(SI_BIO *a);
SI_EVP_PKEY *PEM_read_bio_PUBKEY(SI_BIO *bp, SI_EVP_PKEY **x, void *cb, void *u);
SI_EVP_PKEY *PEM_read_bio_PrivateKey(SI_BIO *bp, SI_EVP_PKEY **x, void *cb, void *u);
void EVP_PKEY_free(SI_EVP_PKEY *pkey);
int EVP_PKEY_get_base_id(const SI_EVP_PKEY *pkey);
int EVP_PKEY_get_group_name(const SI_EVP_PKEY *pkey, char *name, size_t len, size_t *out_len);
int EVP_PKEY_get_bn_param(const SI_EVP_PKEY *pkey, const char *key_name, SI_BIGNUM **bn);
int BN_num_bits(const SI_BIGNUM *a);
int BN_bn2bin(const SI_BIGNUM *a, unsigned char *to);
void BN_free(SI_BIGNUM *a);
int OBJ_sn2nid(const char *s);
SI_EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(SI_EVP_MD_CTX *ctx);
int EVP_DigestVerifyInit(SI_EVP_MD_CTX *ctx, void **pctx, const SI_EVP_MD *type,
                         void *e, SI_EVP_PKEY *pkey);
int EVP_DigestVerify(SI_EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
                     const unsigned char *tbs, size_t tbslen);
int EVP_DigestSignInit(SI_EVP_MD_CTX *ctx, void **pctx, const SI_EVP_MD *type,
                       void *e, SI_EVP_PKEY *pkey);
int EVP_DigestSign(SI_EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen,
                   const unsigned char *tbs, size_t tbslen);
void ERR_clear_error(void);
]]

local C = ffi.load("libcrypto.so.3")
local M = {}

local function read(pem, f)
  local bio = C.BIO_new_mem_buf(pem, #pem)
  local key = C[f](bio, nil, nil, nil)
  C.BIO_free(bio)
  C.ERR_clear_error()
  if key == nil then return nil end
  return ffi.gc(key, C.EVP_PKEY_free)
end

local hmac = {}
function hmac.new(key, typ)
  assert(typ == "sha256", "the stand-in has sha256 only")
  return {
    final = function(_, msg)
      local out = ffi.new("unsigned char[64]")
      local len = ffi.new("unsigned int[1]")
      if C.HMAC(C.EVP_sha256(), key, #key, msg, #msg, out, len) == nil then
        return nil, "hmac:final: HMAC failed"
      end
      return ffi.string(out, len[0])
    end,
  }
end
M.hmac = hmac

-- A DER INTEGER of the unsigned big-endian bytes s.
local function der_integer(s)
  s = s:gsub("^%z+", "")
  if s == "" or s:byte(1) >= 0x80 then s = "\0" .. s end
  return "\2" .. string.char(#s) .. s
end

local pkey = {}
function pkey.new(pem, opts)
  assert(opts and opts.format == "PEM" and opts.type == "pu", "the stand-in reads PEM public keys only")
  local key = read(pem, "PEM_read_bio_PUBKEY")
  if not key then return nil, "pkey.new:load_key: failed" end
  local self = { ctx = key, key_type = C.EVP_PKEY_get_base_id(key) }
  function self.get_key_type(s) return { id = s.key_type } end
  function self.get_parameters(s)
    if s.key_type == 6 then
      local bn = ffi.new("SI_BIGNUM *[1]")
      assert(C.EVP_PKEY_get_bn_param(s.ctx, "n", bn) == 1)
      local n = math.floor((C.BN_num_bits(bn[0]) + 7) / 8)
      local buf = ffi.new("unsigned char[?]", n)
      C.BN_bn2bin(bn[0], buf)
      C.BN_free(bn[0])
      local bytes = ffi.string(buf, n)
      return { n = { to_binary = function() return bytes end } }
    elseif s.key_type == 408 then
      local name = ffi.new("char[64]")
      local len = ffi.new("size_t[1]")
      assert(C.EVP_PKEY_get_group_name(s.ctx, name, 64, len) == 1)
      return { group = C.OBJ_sn2nid(ffi.string(name, len[0])) }
    end
    return nil, "key getter not defined"
  end
  function self.verify(s, sig, msg, md, padding, o)
    assert(md == "sha256" and padding == nil)
    if s.key_type == 408 and o and o.ecdsa_use_raw then
      if #sig ~= 64 then return nil, "pkey:verify: ecdsa.sig_raw2der: invalid signature length" end
      local body = der_integer(sig:sub(1, 32)) .. der_integer(sig:sub(33))
      sig = "\48" .. string.char(#body) .. body
    end
    local ctx = C.EVP_MD_CTX_new()
    local ok = C.EVP_DigestVerifyInit(ctx, nil, C.EVP_sha256(), nil, s.ctx) == 1
      and C.EVP_DigestVerify(ctx, sig, #sig, msg, #msg) == 1
    C.EVP_MD_CTX_free(ctx)
    C.ERR_clear_error()
    if ok then return true end
    return false, "pkey:verify: failed"
  end
  return self
end
M.pkey = pkey

-- Signs msg with a PEM private key (RS256, or ES256 as JWS's r||s).
function M.sign(alg, pem, msg)
  local key = assert(read(pem, "PEM_read_bio_PrivateKey"))
  local ctx = C.EVP_MD_CTX_new()
  assert(C.EVP_DigestSignInit(ctx, nil, C.EVP_sha256(), nil, key) == 1)
  local len = ffi.new("size_t[1]", 1024)
  local buf = ffi.new("unsigned char[1024]")
  assert(C.EVP_DigestSign(ctx, buf, len, msg, #msg) == 1)
  C.EVP_MD_CTX_free(ctx)
  local der = ffi.string(buf, len[0])
  if alg == "RS256" then return der end
  -- SEQUENCE { INTEGER r, INTEGER s } to 32-byte r || s.
  local function int_at(i)
    local n = der:byte(i + 1)
    local v = der:sub(i + 2, i + 1 + n):gsub("^%z+", "")
    return string.rep("\0", 32 - #v) .. v, i + 2 + n
  end
  local r, next_at = int_at(3)
  local s = int_at(next_at)
  return r .. s
end

function M.hs256(key, msg)
  return hmac.new(key, "sha256"):final(msg)
end

-- base64url without padding.
function M.b64url(s)
  local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local idx = math.floor(n / 2 ^ (18 - 6 * (k - 1))) % 64
      out[#out + 1] = A:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

return M
