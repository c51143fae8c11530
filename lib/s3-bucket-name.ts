// S3's naming rules for general-purpose buckets, checked wherever a bucket name is given
// (infra's archiveBucketName, `logarchive manifests --bucket` and its config's `bucket`), so a
// bad name is refused with one line before anything is deployed.

/**
 * Why `name` is not a general-purpose S3 bucket name, or undefined
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
 */
export function s3BucketNameProblem(name: string): string | undefined {
  const rules: [boolean, string][] = [
    [name.length < 3 || name.length > 63, "must be 3 to 63 characters long"],
    [!/^[a-z0-9.-]*$/.test(name), "may hold only lowercase letters, digits, dots and hyphens"],
    [!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name), "must begin and end with a letter or digit"],
    [name.includes(".."), "must not hold two adjacent dots"],
    [/^\d{1,3}(\.\d{1,3}){3}$/.test(name), "must not be formatted as an IP address"],
    [/^(xn--|sthree-|amzn-s3-demo-)/.test(name), "must not start with xn--, sthree- or amzn-s3-demo-"],
    [
      /(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name),
      "must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3",
    ],
  ];
  const broken = rules.find(([bad]) => bad);
  return broken === undefined
    ? undefined
    : `is not an S3 bucket name: ${broken[1]} (got ${JSON.stringify(name)})`;
}
