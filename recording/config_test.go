package recording

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := Config{Bucket: "b"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string // substrings; nil = valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"full", func(c *Config) {
			c.Endpoint, c.Region, c.ForcePathStyle, c.URLTTL = "https://minio.internal:9000", "auto", true, 30*24*time.Hour
			c.AccessKeyID, c.SecretAccessKey, c.SessionToken = "AKID", "secret", "token"
		}, nil},
		{"no bucket", func(c *Config) { c.Bucket = "" }, []string{"S3_BUCKET", "Bucket"}},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "minio:9000" }, []string{"S3_ENDPOINT"}},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://minio" }, []string{"S3_ENDPOINT", "http"}},
		{"endpoint without host", func(c *Config) { c.Endpoint = "http://" }, []string{"S3_ENDPOINT", "host"}},
		{"endpoint with credentials", func(c *Config) { c.Endpoint = "http://user:hunter2@minio" }, []string{"S3_ENDPOINT", "user info"}},
		{"negative ttl", func(c *Config) { c.URLTTL = -time.Minute }, []string{"POSTCALL_RECORDING_URL_TTL"}},
		{"key without secret", func(c *Config) { c.AccessKeyID = "AKID" }, []string{"AWS_SECRET_ACCESS_KEY"}},
		{"secret without key", func(c *Config) { c.SecretAccessKey = "s" }, []string{"AWS_ACCESS_KEY_ID"}},
		{"negative attempts", func(c *Config) { c.DeleteAttempts = -1 }, []string{"DeleteAttempts"}},
		{"several at once", func(c *Config) { c.Bucket, c.URLTTL = "", -1 }, []string{"S3_BUCKET", "POSTCALL_RECORDING_URL_TTL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid
			tt.mutate(&c)
			err := c.withDefaults().validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "hunter2")
			_, newErr := New(t.Context(), c)
			require.EqualError(t, newErr, err.Error(), "New validates")
		})
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	t.Parallel()
	c := Config{Bucket: "b", AccessKeyID: "AKIDVISIBLE", SecretAccessKey: "s3cr3t-value", SessionToken: "t0ken-value"}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c)} {
		require.NotContains(t, out, "s3cr3t-value")
		require.NotContains(t, out, "t0ken-value")
		require.Contains(t, out, `Bucket:"b"`)
	}
}

func TestNewConfiguresClient(t *testing.T) {
	t.Parallel()
	s, err := New(t.Context(), Config{
		Bucket: "rec", Endpoint: "https://acc.r2.cloudflarestorage.com", Region: "auto", ForcePathStyle: true,
		AccessKeyID: "AKID", SecretAccessKey: "secret", SessionToken: "tok",
	})
	require.NoError(t, err)
	o := s.client.Options()
	require.Equal(t, "https://acc.r2.cloudflarestorage.com", aws.ToString(o.BaseEndpoint))
	require.Equal(t, "auto", o.Region)
	require.True(t, o.UsePathStyle)
	require.Equal(t, aws.RequestChecksumCalculationWhenRequired, o.RequestChecksumCalculation)
	require.Equal(t, aws.ResponseChecksumValidationWhenRequired, o.ResponseChecksumValidation)
	creds, err := o.Credentials.Retrieve(t.Context())
	require.NoError(t, err)
	require.Equal(t, "AKID", creds.AccessKeyID)
	require.Equal(t, "tok", creds.SessionToken)
	require.Equal(t, "rec", s.Bucket())
	require.Equal(t, DefaultURLTTL, s.URLTTL(), "zero URLTTL means the default")
	require.Equal(t, DefaultDeleteAttempts, s.attempts)
}

// Not parallel: it controls the environment the default AWS chain reads.
func TestNewRegionFromDefaultChain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	base := Config{Bucket: "rec", AccessKeyID: "AKID", SecretAccessKey: "secret"}

	tests := []struct{ name, env, cfg, want string }{
		{"nothing set", "", "", DefaultRegion},
		{"from AWS_REGION", "eu-west-1", "", "eu-west-1"},
		{"S3_REGION wins", "eu-west-1", "ap-south-1", "ap-south-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tt.env)
			c := base
			c.Region = tt.cfg
			s, err := New(t.Context(), c)
			require.NoError(t, err)
			require.Equal(t, tt.want, s.client.Options().Region)
		})
	}
}
