"""The S3 gateway as boto3 sees it: every operation the gateway serves,
and the errors clients expect. Run by tests/tests/s3.rs against a
`cairn dev` cluster; AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY name the gateway. Exits non-zero on the first
failed check, saying which."""

import base64
import datetime
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]


def client(key=KEY, secret=SECRET, **cfg):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="any-region-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg),
    )


s3 = client()


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def error_code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


B = "suite"
s3.create_bucket(Bucket=B)
check(B in [b["Name"] for b in s3.list_buckets()["Buckets"]], "ListBuckets lists the new bucket")
s3.head_bucket(Bucket=B)
check(error_code(s3.head_bucket, Bucket="nope")[1] == 404, "HeadBucket of a missing bucket is 404")
check(
    error_code(s3.create_bucket, Bucket=B)[0] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"),
    "CreateBucket of an existing bucket is refused",
)

# ---- put / head / get, metadata, ranges ------------------------------------
body = b"hello, cairn! " * 1000
md5 = hashlib.md5(body).hexdigest()
put = s3.put_object(
    Bucket=B,
    Key="docs/a.txt",
    Body=body,
    ContentType="text/plain",
    Metadata={"color": "blue", "n": "7"},
    CacheControl="max-age=60",
)
check(put["ETag"].strip('"') == md5, "PutObject answers the MD5 ETag")
check(len(put["ResponseMetadata"].get("RequestId", "")) == 16, "answers carry an x-amz-request-id")
head = s3.head_object(Bucket=B, Key="docs/a.txt")
check(head["ContentLength"] == len(body), "HeadObject size")
check(head["ETag"].strip('"') == md5, "HeadObject ETag")
check(head["ContentType"] == "text/plain", "Content-Type kept")
check(head["Metadata"] == {"color": "blue", "n": "7"}, "x-amz-meta-* kept")
check(head.get("CacheControl") == "max-age=60", "Cache-Control kept")
got = s3.get_object(Bucket=B, Key="docs/a.txt")
check(got["Body"].read() == body, "GetObject returns the bytes")
part = s3.get_object(Bucket=B, Key="docs/a.txt", Range="bytes=7-11")
check(part["Body"].read() == body[7:12], "range GET returns the range")
check(part["ContentRange"] == f"bytes 7-11/{len(body)}", "range GET's Content-Range")
tail = s3.get_object(Bucket=B, Key="docs/a.txt", Range="bytes=-5")
check(tail["Body"].read() == body[-5:], "suffix range GET")
check(
    error_code(s3.get_object, Bucket=B, Key="docs/a.txt", Range=f"bytes={len(body)}-")[0] == "InvalidRange",
    "a range past the end is InvalidRange",
)
check(error_code(s3.get_object, Bucket=B, Key="docs/missing")[0] == "NoSuchKey", "GET of a missing key")
check(error_code(s3.get_object, Bucket="nope", Key="x")[0] == "NoSuchBucket", "GET in a missing bucket")

# ---- conditional requests ---------------------------------------------------
check(error_code(s3.get_object, Bucket=B, Key="docs/a.txt", IfMatch='"0000"')[1] == 412, "If-Match other: 412")
check(error_code(s3.get_object, Bucket=B, Key="docs/a.txt", IfMatch=f'"{md5}"')[1] == 200, "If-Match same: 200")
check(error_code(s3.get_object, Bucket=B, Key="docs/a.txt", IfNoneMatch=f'"{md5}"')[1] == 304, "If-None-Match same: 304")
future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
check(error_code(s3.get_object, Bucket=B, Key="docs/a.txt", IfModifiedSince=future)[1] == 304, "If-Modified-Since future: 304")
check(error_code(s3.get_object, Bucket=B, Key="docs/a.txt", IfUnmodifiedSince=past)[1] == 412, "If-Unmodified-Since past: 412")
check(error_code(s3.head_object, Bucket=B, Key="docs/a.txt", IfMatch='"0000"')[1] == 412, "HEAD If-Match other: 412")
check(
    error_code(s3.put_object, Bucket=B, Key="docs/a.txt", Body=b"x", IfNoneMatch="*")[1] == 412,
    "PUT If-None-Match * over an object: 412",
)
check(s3.get_object(Bucket=B, Key="docs/a.txt")["Body"].read() == body, "a refused PUT changed nothing")
s3.put_object(Bucket=B, Key="docs/new.txt", Body=b"new", IfNoneMatch="*")
check(s3.get_object(Bucket=B, Key="docs/new.txt")["Body"].read() == b"new", "PUT If-None-Match * of a new key")

# ---- digests ----------------------------------------------------------------
bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
check(
    error_code(s3.put_object, Bucket=B, Key="docs/a.txt", Body=b"changed", ContentMD5=bad_md5)[0] == "BadDigest",
    "a wrong Content-MD5 is BadDigest",
)
check(s3.get_object(Bucket=B, Key="docs/a.txt")["Body"].read() == body, "a BadDigest PUT changed nothing")
good_md5 = base64.b64encode(hashlib.md5(b"changed").digest()).decode()
s3.put_object(Bucket=B, Key="docs/md5.txt", Body=b"changed", ContentMD5=good_md5)
# (CRC32C and CRC64NVME need botocore[crt], which the suite does without.)
for alg in ["CRC32", "SHA1", "SHA256"]:
    r = s3.put_object(Bucket=B, Key=f"sums/{alg}", Body=b"checked " + alg.encode(), ChecksumAlgorithm=alg)
    check(r.get(f"Checksum{alg}"), f"PutObject with a {alg} checksum answers it")
    h = s3.head_object(Bucket=B, Key=f"sums/{alg}", ChecksumMode="ENABLED")
    check(h.get(f"Checksum{alg}") == r[f"Checksum{alg}"], f"HeadObject returns the {alg} checksum")
check(
    error_code(s3.put_object, Bucket=B, Key="sums/bad", Body=b"abc", ChecksumCRC32="AAAAAA==")[0] == "BadDigest",
    "a wrong x-amz-checksum-crc32 is BadDigest",
)
check(error_code(s3.head_object, Bucket=B, Key="sums/bad")[1] == 404, "a BadDigest PUT stored nothing")

# ---- server-side copies -----------------------------------------------------
r = s3.copy_object(Bucket=B, Key="docs/copy.txt", CopySource={"Bucket": B, "Key": "docs/a.txt"})
check(r["CopyObjectResult"]["ETag"].strip('"') == md5, "CopyObject keeps the MD5 ETag")
h = s3.head_object(Bucket=B, Key="docs/copy.txt")
check(h["Metadata"] == {"color": "blue", "n": "7"} and h["ContentType"] == "text/plain", "a COPY keeps the metadata")
check(s3.get_object(Bucket=B, Key="docs/copy.txt")["Body"].read() == body, "the copy has the bytes")
s3.copy_object(
    Bucket=B, Key="docs/copy2.txt", CopySource={"Bucket": B, "Key": "docs/a.txt"},
    MetadataDirective="REPLACE", Metadata={"x": "y"}, ContentType="application/x-test",
)
h = s3.head_object(Bucket=B, Key="docs/copy2.txt")
check(h["Metadata"] == {"x": "y"} and h["ContentType"] == "application/x-test", "a REPLACE takes the new metadata")
check(
    error_code(s3.copy_object, Bucket=B, Key="docs/a.txt", CopySource={"Bucket": B, "Key": "docs/a.txt"})[0] == "InvalidRequest",
    "a copy onto itself without REPLACE is refused",
)
check(
    error_code(s3.copy_object, Bucket=B, Key="docs/c3", CopySource={"Bucket": B, "Key": "docs/a.txt"}, CopySourceIfMatch='"0000"')[1] == 412,
    "x-amz-copy-source-if-match other: 412",
)
check(error_code(s3.head_object, Bucket=B, Key="docs/c3")[1] == 404, "and nothing was copied")
check(
    error_code(s3.copy_object, Bucket=B, Key="docs/c4", CopySource={"Bucket": B, "Key": "docs/none"})[0] == "NoSuchKey",
    "a copy of a missing key",
)
s3.put_object(Bucket=B, Key="tiny", Body=b"ab")
s3.copy_object(Bucket=B, Key="tiny-copy", CopySource={"Bucket": B, "Key": "tiny"})
check(s3.get_object(Bucket=B, Key="tiny-copy")["Body"].read() == b"ab", "a copy of a tiny object")

# ---- multipart uploads --------------------------------------------------------
MK = "big/mp.bin"
up = s3.create_multipart_upload(Bucket=B, Key=MK, ContentType="application/x-mp", Metadata={"m": "1"})["UploadId"]
p1, p2 = os.urandom(5 << 20), os.urandom(1000)
e1 = s3.upload_part(Bucket=B, Key=MK, UploadId=up, PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part(Bucket=B, Key=MK, UploadId=up, PartNumber=2, Body=p2, ChecksumAlgorithm="SHA256")["ETag"]
check(e1.strip('"') == hashlib.md5(p1).hexdigest(), "UploadPart answers the part's MD5")
parts = s3.list_parts(Bucket=B, Key=MK, UploadId=up)["Parts"]
check([(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(p1)), (2, len(p2))], "ListParts")
check(up in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=B)["Uploads"]], "ListMultipartUploads")
check(
    error_code(s3.complete_multipart_upload, Bucket=B, Key=MK, UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e2}, {"PartNumber": 2, "ETag": e2}]})[0] == "InvalidPart",
    "a Complete naming a wrong ETag is InvalidPart",
)
check(
    error_code(s3.complete_multipart_upload, Bucket=B, Key=MK, UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})[0] == "InvalidPartOrder",
    "parts out of order",
)
r = s3.complete_multipart_upload(
    Bucket=B, Key=MK, UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}
)
want = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest() + "-2"
check(r["ETag"].strip('"') == want, "the multipart ETag is md5-of-md5s-N")
g = s3.get_object(Bucket=B, Key=MK)
check(g["Body"].read() == p1 + p2 and g["ETag"].strip('"') == want, "the completed object is its parts")
check(g["Metadata"] == {"m": "1"} and g["ContentType"] == "application/x-mp", "Create's headers are the object's")
check(error_code(s3.list_parts, Bucket=B, Key=MK, UploadId=up)[0] == "NoSuchUpload", "a completed upload is gone")
small = s3.create_multipart_upload(Bucket=B, Key="big/small")["UploadId"]
s1 = s3.upload_part(Bucket=B, Key="big/small", UploadId=small, PartNumber=1, Body=b"x" * 100)["ETag"]
s2 = s3.upload_part(Bucket=B, Key="big/small", UploadId=small, PartNumber=2, Body=b"y")["ETag"]
check(
    error_code(s3.complete_multipart_upload, Bucket=B, Key="big/small", UploadId=small,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]})[0] == "EntityTooSmall",
    "a part under 5 MiB before the last is EntityTooSmall",
)
s3.abort_multipart_upload(Bucket=B, Key="big/small", UploadId=small)
check(small not in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=B).get("Uploads", [])], "AbortMultipartUpload")
check(error_code(s3.upload_part, Bucket=B, Key="big/small", UploadId=small, PartNumber=3, Body=b"z")[0] == "NoSuchUpload", "no parts after an abort")
check(error_code(s3.head_object, Bucket=B, Key="big/small")[1] == 404, "an aborted upload leaves no object")
check(error_code(s3.list_parts, Bucket=B, Key=MK, UploadId="../../../etc")[0] == "NoSuchUpload", "an upload id is never a path")
pc = s3.create_multipart_upload(Bucket=B, Key="big/pc.bin")["UploadId"]
c1 = s3.upload_part_copy(Bucket=B, Key="big/pc.bin", UploadId=pc, PartNumber=1,
                         CopySource={"Bucket": B, "Key": MK}, CopySourceRange=f"bytes=1-{5 << 20}")["CopyPartResult"]["ETag"]
c2 = s3.upload_part_copy(Bucket=B, Key="big/pc.bin", UploadId=pc, PartNumber=2,
                         CopySource={"Bucket": B, "Key": "docs/a.txt"})["CopyPartResult"]["ETag"]
check(c2.strip('"') == md5, "UploadPartCopy of a whole object keeps its MD5")
s3.complete_multipart_upload(Bucket=B, Key="big/pc.bin", UploadId=pc,
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c1}, {"PartNumber": 2, "ETag": c2}]})
check(s3.get_object(Bucket=B, Key="big/pc.bin")["Body"].read() == (p1 + p2)[1:(5 << 20) + 1] + body, "UploadPartCopy ranges")

# ---- listings -----------------------------------------------------------------
L = "listing"
s3.create_bucket(Bucket=L)
# Keys with paths, keys that are a prefix of others ("a" and "a/x"), and
# keys with no path of their own, which the gateway keeps in its store.
odd = ["a//b", "b/", "./dot", "a/../up", "s" * 300 + "/t", "k" * 1024, ".cairn-s3/mine", "sp ace/é"]
keys = sorted(["a", "a-b", "a/x", "a/y/z", "a0", "b/1", "b/2", "c", "d/e/f/g", "d-x", "d.y", "d0"] + odd, key=lambda k: k.encode())
for k in keys:
    s3.put_object(Bucket=L, Key=k, Body=k.encode())
for k in odd:
    check(s3.get_object(Bucket=L, Key=k)["Body"].read() == k.encode(), f"a key with no path of its own works ({k[:20]!r})")


def reference(prefix="", delimiter=None):
    """What S3 lists: keys in byte order, rolled up at the delimiter."""
    out, seen = [], set()
    for k in keys:
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if delimiter and delimiter in rest:
            cp = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if cp not in seen:
                seen.add(cp)
                out.append("[" + cp + "]")
        else:
            out.append(k)
    return out


def listed_v2(max_keys=1000, **kw):
    out, token, pages = [], None, 0
    while True:
        more = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=L, MaxKeys=max_keys, **kw, **more)
        pages += 1
        check(r["KeyCount"] <= max_keys, "a page holds at most MaxKeys")
        got = [o["Key"] for o in r.get("Contents", [])] + ["[" + p["Prefix"] + "]" for p in r.get("CommonPrefixes", [])]
        out += sorted(got, key=lambda x: x.strip("[]").encode())
        if not r["IsTruncated"]:
            return out, pages
        token = r["NextContinuationToken"]


for kw in [{}, {"Delimiter": "/"}, {"Prefix": "a"}, {"Prefix": "a/", "Delimiter": "/"}, {"Prefix": "b", "Delimiter": "/"},
           {"Delimiter": "-"}, {"Prefix": "s", "Delimiter": "/"}, {"Prefix": "zzz"}]:
    want = reference(kw.get("Prefix", ""), kw.get("Delimiter"))
    for mk in [1000, 2]:
        got, pages = listed_v2(max_keys=mk, **kw)
        check(got == want, f"ListObjectsV2 {kw} max-keys {mk} lists as S3 does ({got} vs {want})")
r = s3.list_objects_v2(Bucket=L, StartAfter="a0")
check([o["Key"] for o in r["Contents"]] == [k for k in keys if k.encode() > b"a0"], "StartAfter")
v1, marker = [], ""
while True:
    r = s3.list_objects(Bucket=L, MaxKeys=3, Marker=marker)
    v1 += [o["Key"] for o in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    marker = r.get("NextMarker") or r["Contents"][-1]["Key"]
check(v1 == keys, "ListObjects (v1) with markers")
listing = s3.list_objects_v2(Bucket=L)["Contents"]
check(all(o["Size"] == len(o["Key"].encode()) for o in listing), "listed sizes")
check(all(o["ETag"].strip('"') == hashlib.md5(o["Key"].encode()).hexdigest() for o in listing), "listed ETags are MD5s")

# ---- deletes ------------------------------------------------------------------
check(error_code(s3.delete_bucket, Bucket=L)[0] == "BucketNotEmpty", "DeleteBucket of a bucket with keys")
s3.delete_object(Bucket=L, Key="c")
s3.delete_object(Bucket=L, Key="never-there")
r = s3.delete_objects(Bucket=L, Delete={"Objects": [{"Key": k} for k in keys if k != "c"]})
check(sorted(d["Key"] for d in r["Deleted"]) == [k for k in keys if k != "c"], "DeleteObjects deletes each")
check(s3.list_objects_v2(Bucket=L)["KeyCount"] == 0, "the bucket lists empty after the deletes")
s3.delete_bucket(Bucket=L)
check(L not in [b["Name"] for b in s3.list_buckets()["Buckets"]], "DeleteBucket")

check(error_code(s3.put_object, Bucket=B, Key="k" * 1025, Body=b"x")[0] == "KeyTooLongError", "a key over 1,024 bytes")

# ---- access --------------------------------------------------------------------
check(
    error_code(client(secret="wrong-secret-0000").list_objects_v2, Bucket=B)[0] == "SignatureDoesNotMatch",
    "a wrong secret is SignatureDoesNotMatch",
)
check(
    error_code(client(key="NOSUCHKEY1234").list_objects_v2, Bucket=B)[0] == "InvalidAccessKeyId",
    "an unknown key is InvalidAccessKeyId",
)
anon = boto3.client("s3", endpoint_url=ENDPOINT, region_name="x", config=Config(signature_version=botocore.UNSIGNED))
check(error_code(anon.list_objects_v2, Bucket=B)[1] == 403, "an anonymous request is refused")
check(
    error_code(client(secret="wrong-secret-0000").put_object, Bucket=B, Key="docs/a.txt", Body=b"evil")[1] == 403,
    "a badly signed PUT is refused",
)
check(s3.get_object(Bucket=B, Key="docs/a.txt")["Body"].read() == body, "and changed nothing")
url = s3.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "docs/a.txt"}, ExpiresIn=300)
check(urllib.request.urlopen(url).read() == body, "a presigned GET works")
short = s3.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "docs/a.txt"}, ExpiresIn=1)
time.sleep(2.5)
try:
    urllib.request.urlopen(short)
    check(False, "an expired presigned URL is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403, "an expired presigned URL is refused")
tampered = url.replace("docs%2Fa.txt", "docs%2Fnew.txt").replace("docs/a.txt", "docs/new.txt")
try:
    urllib.request.urlopen(tampered)
    check(False, "a presigned URL for another key is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403, "a presigned URL for another key is refused")

print("boto3 suite passed")
