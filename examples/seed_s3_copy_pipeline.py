#!/usr/bin/env python
"""The original Arbalest README's example, unchanged: it runs on the new core.

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... BUCKET_NAME=my-bucket \\
    REDSHIFT_CONNECTION="host=... dbname=... user=..." python examples/seed_s3_copy_pipeline.py

REDSHIFT_CONNECTION may name a PostgreSQL server too: Arbalest tells them apart. Without
BUCKET_NAME or REDSHIFT_CONNECTION it says which is missing; the AWS keys may come from
anywhere boto3 looks. It prints the run's summary.
"""
import sys

import psycopg2
from arbalest.configuration import env
from arbalest.redshift import S3CopyPipeline
from arbalest.redshift.schema import JsonObject, Property

if __name__ == '__main__':
    missing = [name for name in ('BUCKET_NAME', 'REDSHIFT_CONNECTION') if not env(name)]
    if missing:
        sys.exit('set the environment variable ' + ' and '.join(missing)
                 + ' (see the top of ' + __file__ + ')')

    pipeline = S3CopyPipeline(
        aws_access_key_id=env('AWS_ACCESS_KEY_ID'),
        aws_secret_access_key=env('AWS_SECRET_ACCESS_KEY'),
        bucket=env('BUCKET_NAME'),
        db_connection=psycopg2.connect(env('REDSHIFT_CONNECTION')))

    pipeline.bulk_copy(metadata='path_to_save_pipeline_metadata',
                       source='path_of_source_data',
                       schema=JsonObject('destination_table_name',
                                         Property('id', 'VARCHAR(36)'),
                                         Property('someNumber', 'INTEGER',
                                                  'custom_column_name')))

    pipeline.manifest_copy(metadata='path_to_save_pipeline_metadata',
                           source='path_of_incremental_source_data',
                           schema=JsonObject('incremental_destination_table_name',
                                             Property('id', 'VARCHAR(36)'),
                                             Property('someNumber', 'INTEGER',
                                                      'custom_column_name')))

    print(pipeline.run())
