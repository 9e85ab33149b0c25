# Resolves credentials through botocore's own chain (container or IMDS provider, from the
# environment), then asks the STS stand-in (argv[1]) who they belong to. Prints the ARN and which
# botocore provider answered; nothing secret.
import json
import sys

import botocore.session

session = botocore.session.get_session()
credentials = session.get_credentials()
client = session.create_client('sts', endpoint_url=sys.argv[1], region_name='ap-northeast-1')
print(json.dumps({'arn': client.get_caller_identity()['Arn'], 'method': credentials.method}))
